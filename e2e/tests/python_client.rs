//! The Python `kubernetes` client (from PyPI, in `make deps`' virtualenv)
//! against a `berth apiserver` process: create, list, watch, patch, delete.

use std::process::Command;

use berth_e2e::berth::Berth;
use berth_e2e::output_text;

#[test]
fn python_kubernetes_client_round_trip() {
    let python = berth_e2e::kubectl::venv().join("bin/python");
    assert!(python.is_file(), "{} is missing: run `make deps`", python.display());
    let berth = Berth::apiserver(&[]);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/client.py");
    let out = Command::new(&python)
        .arg(&script)
        .env("KUBECONFIG", &berth.kubeconfig)
        .env("HOME", berth.dir.path())
        .output()
        .expect("running python");
    assert!(out.status.success(), "{}\n{}", output_text(&out), berth.log_tail());
    assert!(String::from_utf8_lossy(&out.stdout).contains("all python client checks passed"), "{}", output_text(&out));
}
