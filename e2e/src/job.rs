//! The Job manifests end-to-end tests apply: one task group `main` whose
//! instances run a shell script (`/bin/sh -c`) in an image, with whatever
//! fields a test adds.

/// A Job running `script` in `image`, as YAML for `kubectl apply -f -`.
#[derive(Clone, Debug)]
pub struct ShellJob {
    name: String,
    image: String,
    script: String,
    instances: u32,
    cpu: String,
    memory: String,
    /// Job-level fields, indented for `spec:`.
    spec: String,
    /// Task-group fields, indented for the `main` group.
    group: String,
}

impl ShellJob {
    /// One instance, `cpu: 100m`, `memory: 32Mi`.
    pub fn new(name: &str, image: &str, script: &str) -> ShellJob {
        ShellJob {
            name: name.into(),
            image: image.into(),
            script: script.into(),
            instances: 1,
            cpu: "100m".into(),
            memory: "32Mi".into(),
            spec: String::new(),
            group: String::new(),
        }
    }

    pub fn instances(mut self, n: u32) -> ShellJob {
        self.instances = n;
        self
    }

    pub fn resources(mut self, cpu: &str, memory: &str) -> ShellJob {
        self.cpu = cpu.into();
        self.memory = memory.into();
        self
    }

    /// Adds a Job-level field: one YAML line such as `imagePullSecret: creds`.
    pub fn spec_field(mut self, line: &str) -> ShellJob {
        self.spec.push_str(&format!("  {line}\n"));
        self
    }

    /// Adds task-group fields: YAML lines relative to the group, such as
    /// `terminationGracePeriodSeconds: 5` or a multi-line `securityContext:`.
    pub fn group_fields(mut self, yaml: &str) -> ShellJob {
        for line in yaml.lines() {
            self.group.push_str(&format!("      {line}\n"));
        }
        self
    }

    pub fn yaml(&self) -> String {
        let ShellJob { name, image, script, instances, cpu, memory, spec, group } = self;
        format!(
            r#"apiVersion: berth.dev/v1alpha1
kind: Job
metadata:
  name: {name}
  namespace: default
spec:
{spec}  taskGroups:
    - name: main
      instances: {instances}
      image: {image}
      command: ["/bin/sh", "-c"]
      args: [{script:?}]
      resources:
        cpu: {cpu}
        memory: {memory}
{group}"#
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_land_at_their_level() {
        let y = ShellJob::new("j", "img", "echo \"hi\"")
            .instances(2)
            .spec_field("imagePullSecret: creds")
            .group_fields("securityContext:\n  runAsUser: 1000")
            .yaml();
        assert!(y.contains("spec:\n  imagePullSecret: creds\n  taskGroups:\n"), "{y}");
        assert!(y.contains("      instances: 2\n"), "{y}");
        assert!(y.contains("      args: [\"echo \\\"hi\\\"\"]\n"), "{y}");
        assert!(y.ends_with("        memory: 32Mi\n      securityContext:\n        runAsUser: 1000\n"), "{y}");
    }
}
