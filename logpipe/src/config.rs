//! The `logs:` section of the config file: host files to follow besides the containers' logs.
//!
//! ```yaml
//! logs:
//!   sources:
//!   - name: system
//!     paths: [/var/log/*.log]
//!     exclude: [/var/log/debug*.log]
//!     startAt: end          # or beginning; for files present when the pipeline first starts
//!     multiline:            # optional: lines not matching `start` continue the record before them
//!       start: '^\d{4}-'    # a regular expression
//!       timeout: 1s         # a record with no line for this long goes out (default 1s)
//!       maxLines: 500       # (default)
//!   containers:             # multiline joining for containers' logs, the first rule that matches
//!   - namespace: shop       # globs; absent means any
//!     pod: 'checkout-*'
//!     container: app
//!     multiline: {start: '^\S'}
//!   partition: 1h           # the window of line time an index partition covers
//!   retention:
//!     maxAge: 168h          # partitions whose newest line is older go; `none` keeps them
//!     maxSize: 10Gi         # beyond this in all, the oldest partitions go; `none`: no limit
//! ```
//!
//! Durations and sizes are checked (and turned into `index::Retention`) by the binary's config, which
//! owns their syntax.

use std::sync::Arc;

use serde::Deserialize;

use crate::multiline::MultilineRule;
use crate::tailer::{ContainerMultiline, HostSource};

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
    #[serde(default)]
    pub containers: Vec<ContainerRule>,
}

/// Which containers' logs a multiline rule applies to.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ContainerRule {
    pub namespace: Option<String>,
    pub pod: Option<String>,
    pub container: Option<String>,
    pub multiline: MultilineConfig,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MultilineConfig {
    /// A regular expression: a line that matches starts a record.
    pub start: String,
    pub timeout: Option<String>,
    pub max_lines: Option<usize>,
}

impl MultilineConfig {
    fn rule(&self) -> Result<MultilineRule, String> {
        let start = regex::bytes::Regex::new(&self.start)
            .map_err(|e| format!("start: {:?} is not a regular expression: {e}", self.start))?;
        let timeout = match &self.timeout {
            None => MultilineRule::DEFAULT_TIMEOUT,
            Some(text) => text
                .parse::<jiff::SignedDuration>()
                .ok()
                .and_then(|d| std::time::Duration::try_from(d).ok())
                .filter(|d| !d.is_zero())
                .ok_or_else(|| format!("timeout: {text:?} is not a duration such as 500ms or 2s"))?,
        };
        let max_lines = self.max_lines.unwrap_or(MultilineRule::DEFAULT_MAX_LINES);
        if max_lines < 2 {
            return Err("maxLines: must be at least 2".into());
        }
        Ok(MultilineRule {
            start,
            timeout,
            max_lines,
        })
    }
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
    pub multiline: Option<MultilineConfig>,
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
            if let Some(Err(e)) = source.multiline.as_ref().map(MultilineConfig::rule) {
                problems.push(format!("{at}.multiline.{e}"));
            }
            if !["beginning", "end"].contains(&source.start_at.as_str()) {
                problems.push(format!(
                    "{at}.startAt: {:?} is neither beginning nor end",
                    source.start_at
                ));
            }
        }
        for (i, rule) in self.containers.iter().enumerate() {
            let at = format!("logs.containers[{i}]");
            for (field, pattern) in [
                ("namespace", &rule.namespace),
                ("pod", &rule.pod),
                ("container", &rule.container),
            ] {
                if let Some(Err(e)) = pattern.as_deref().map(glob::Pattern::new) {
                    problems.push(format!("{at}.{field}: {pattern:?} is not a glob: {e}"));
                }
            }
            if let Err(e) = rule.multiline.rule() {
                problems.push(format!("{at}.multiline.{e}"));
            }
        }
        problems
    }

    /// The containers' multiline rules as the tailer takes them (valid: `validate` passed).
    pub fn container_rules(&self) -> Vec<ContainerMultiline> {
        let glob = |p: &Option<String>| p.as_deref().and_then(|p| glob::Pattern::new(p).ok());
        self.containers
            .iter()
            .filter_map(|rule| {
                Some(ContainerMultiline {
                    namespace: glob(&rule.namespace),
                    pod: glob(&rule.pod),
                    container: glob(&rule.container),
                    rule: Arc::new(rule.multiline.rule().ok()?),
                })
            })
            .collect()
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
                multiline: s.multiline.as_ref().and_then(|m| m.rule().ok()).map(Arc::new),
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
                            {"name": "a", "paths": [], "multiline": {"start": "(", "timeout": "soon"}}],
                "containers": [{"pod": "[", "multiline": {"start": "^x", "maxLines": 1}}]}"#,
        );
        let problems = config.validate();
        assert_eq!(problems.len(), 8, "{problems:#?}");
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("logs.sources[1].multiline.start")),
            "{problems:#?}"
        );
        assert!(
            problems.iter().any(|p| p.starts_with("logs.containers[0].pod")),
            "{problems:#?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p == "logs.containers[0].multiline.maxLines: must be at least 2")
        );
    }

    fn serde_yaml_like(json: &str) -> LogsConfig {
        serde_json::from_str(json).unwrap()
    }
}
