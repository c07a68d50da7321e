//! The `logs:` section of the config file: host files to follow besides the containers' logs.
//!
//! ```yaml
//! logs:
//!   sources:
//!   - name: system
//!     paths: [/var/log/*.log]
//!     exclude: [/var/log/debug*.log]
//!     startAt: end          # or beginning; for files present when the pipeline first starts
//!   partition: 1h           # the window of line time an index partition covers
//!   retention:
//!     maxAge: 168h          # partitions whose newest line is older go; `none` keeps them
//!     maxSize: 10Gi         # beyond this in all, the oldest partitions go; `none`: no limit
//! ```
//!
//! Durations and sizes are checked (and turned into `index::Retention`) by the binary's config, which
//! owns their syntax.

use serde::Deserialize;

use crate::tailer::HostSource;

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LogsConfig {
    #[serde(default)]
    pub sources: Vec<SourceConfig>,
    /// The window of line time an index partition covers (default `1h`).
    #[serde(default)]
    pub partition: Option<String>,
    #[serde(default)]
    pub retention: RetentionConfig,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RetentionConfig {
    /// Default `168h`; `none` keeps lines whatever their age.
    pub max_age: Option<String>,
    /// Default `10Gi`; `none` sets no limit.
    pub max_size: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SourceConfig {
    /// Names the source in `attributes.logSource`.
    pub name: String,
    /// Glob patterns of the files (`*`, `?`, `[...]`, `**`).
    pub paths: Vec<String>,
    /// Glob patterns of files to leave out.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// `beginning` or `end` (default): where files present at the first start are read from.
    #[serde(default = "default_start_at")]
    pub start_at: String,
}

fn default_start_at() -> String {
    "end".into()
}

impl LogsConfig {
    /// Every problem at once.
    pub fn validate(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut names = std::collections::BTreeSet::new();
        for (i, source) in self.sources.iter().enumerate() {
            let at = format!("logs.sources[{i}]");
            if source.name.is_empty() {
                problems.push(format!("{at}.name: required"));
            } else if !names.insert(source.name.clone()) {
                problems.push(format!("{at}.name: {:?} is used twice", source.name));
            }
            if source.paths.is_empty() {
                problems.push(format!("{at}.paths: name at least one glob"));
            }
            for (field, patterns) in [("paths", &source.paths), ("exclude", &source.exclude)] {
                for (j, pattern) in patterns.iter().enumerate() {
                    if let Err(e) = glob::Pattern::new(pattern) {
                        problems.push(format!("{at}.{field}[{j}]: {pattern:?} is not a glob: {e}"));
                    } else if field == "paths" && !pattern.starts_with('/') {
                        problems.push(format!("{at}.{field}[{j}]: {pattern:?} must be an absolute path"));
                    }
                }
            }
            if !["beginning", "end"].contains(&source.start_at.as_str()) {
                problems.push(format!(
                    "{at}.startAt: {:?} is neither beginning nor end",
                    source.start_at
                ));
            }
        }
        problems
    }

    /// The sources as the tailer takes them (valid: `validate` passed).
    pub fn host_sources(&self) -> Vec<HostSource> {
        let compile = |patterns: &[String]| {
            patterns
                .iter()
                .filter_map(|p| glob::Pattern::new(p).ok())
                .collect()
        };
        self.sources
            .iter()
            .map(|s| HostSource {
                name: s.name.clone(),
                include: compile(&s.paths),
                exclude: compile(&s.exclude),
                start_at_end: s.start_at == "end",
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_at_once() {
        let config: LogsConfig = serde_yaml_like(
            r#"{"sources": [{"name": "a", "paths": ["relative/*.log", "/x/[.log"], "startAt": "middle"},
                            {"name": "a", "paths": []}]}"#,
        );
        let problems = config.validate();
        assert_eq!(problems.len(), 5, "{problems:#?}");
    }

    fn serde_yaml_like(json: &str) -> LogsConfig {
        serde_json::from_str(json).unwrap()
    }
}
