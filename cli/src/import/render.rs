//! The imported objects as a user applies them: YAML (one document per
//! object, with comments saying where values came from) or JSON (one
//! object after the other: the Framework, then the Job — a stream that
//! `kubectl apply -f` and `jq` read, without a `v1 List` that kubectl
//! validates against `/openapi/v2`).

use super::map::Imported;

/// The output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Yaml,
    Json,
}

/// The objects of `imported` in `format`, ending with a newline.
pub fn render(imported: &Imported, format: Format) -> String {
    match format {
        Format::Yaml => yaml(imported),
        Format::Json => json(imported),
    }
}

fn yaml(imported: &Imported) -> String {
    let mut out = String::new();
    if let Some(fw) = &imported.framework {
        out.push_str("# The framework that keeps the service below running (rolling updates, restarts, health).\n");
        out.push_str(&serde_saphyr::to_string(fw).expect("a Framework always serializes"));
        out.push_str("---\n");
    }
    match &imported.marathon_id {
        Some(id) => out.push_str(&format!("# Imported from the Marathon app {id} by `berth import marathon`.\n")),
        None => out.push_str("# Imported from a Marathon app by `berth import marathon`.\n"),
    }
    let job = serde_saphyr::to_string(&imported.job).expect("a Job always serializes");
    out.push_str(&comment(&job, &imported.comments));
    out
}

/// `yaml` with `# comment` after the first line of each `key:`.
fn comment(yaml: &str, comments: &[(String, String)]) -> String {
    let mut lines: Vec<String> = yaml.lines().map(str::to_string).collect();
    for (key, text) in comments {
        let prefix = format!("{key}:");
        if let Some(line) = lines.iter_mut().find(|l| l.trim_start().trim_start_matches("- ").starts_with(&prefix)) {
            line.push_str(" # ");
            line.push_str(text);
        }
    }
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

fn json(imported: &Imported) -> String {
    let mut objects = Vec::new();
    if let Some(fw) = &imported.framework {
        objects.push(serde_json::to_value(fw).expect("a Framework always serializes"));
    }
    objects.push(serde_json::to_value(&imported.job).expect("a Job always serializes"));
    objects.iter().map(|o| serde_json::to_string_pretty(o).expect("JSON values always serialize") + "\n").collect()
}
