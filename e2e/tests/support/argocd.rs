//! Argo CD's view of a Job: the Lua health check Berth ships
//! (`manifests/argocd/argocd-cm-health.yaml`, shown in `docs/batch.md`) run
//! by Lua 5.1 — the language of Argo CD's gopher-lua — over a Job as the
//! API returned it, as Argo CD runs it over the live object.

use std::path::PathBuf;
use std::process::Command;

use berth_e2e::output_text;
use serde_json::Value;

const KEY: &str = "resource.customizations.health.berth.dev_Job: |\n";

fn repo(rel: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..").join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The Lua script of the shipped ConfigMap (its block, unindented); panics
/// if `docs/batch.md` shows another.
pub fn script() -> String {
    let manifest = repo("manifests/argocd/argocd-cm-health.yaml");
    let start = manifest.find(KEY).expect("the health key in the manifest") + KEY.len();
    let block = &manifest[start..];
    let docs = repo("docs/batch.md");
    assert!(docs.contains(block), "docs/batch.md shows another health check than the manifest's:\n{block}");
    block.lines().map(|l| l.strip_prefix("    ").unwrap_or(l)).collect::<Vec<_>>().join("\n")
}

/// A Lua table literal of `v` (`null` becomes `nil`).
fn lua(v: &Value) -> String {
    match v {
        Value::Null => "nil".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            let mut out = String::from("\"");
            for c in s.chars() {
                match c {
                    '"' | '\\' => out.extend(['\\', c]),
                    c if (c as u32) < 0x20 => out.push_str(&format!("\\{:03}", c as u32)),
                    c => out.push(c),
                }
            }
            out.push('"');
            out
        }
        Value::Array(items) => format!("{{{}}}", items.iter().map(lua).collect::<Vec<_>>().join(", ")),
        Value::Object(map) => {
            let fields: Vec<String> =
                map.iter().map(|(k, v)| format!("[{}] = {}", lua(&k.clone().into()), lua(v))).collect();
            format!("{{{}}}", fields.join(", "))
        }
    }
}

/// (status, message) the health check gives `job` (its JSON from the API).
pub fn health(job: &Value) -> (String, String) {
    berth_e2e::require("lua5.1", "lua5.1");
    let dir = tempfile::tempdir().expect("tempdir");
    let check = dir.path().join("health.lua");
    std::fs::write(&check, script()).expect("writing the script");
    let driver = format!(
        "obj = {}\nlocal hs = dofile({:?})\nio.write(hs.status, \"\\n\", hs.message or \"\")\n",
        lua(job),
        check.display().to_string()
    );
    let out = Command::new("lua5.1").arg("-e").arg(&driver).output().expect("running lua5.1");
    assert!(out.status.success(), "the health check failed: {}", output_text(&out));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (status, message) = text.split_once('\n').unwrap_or((&text, ""));
    (status.to_string(), message.to_string())
}
