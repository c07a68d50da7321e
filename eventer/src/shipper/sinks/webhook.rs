//! POSTs events as JSON: one record (or rendered template) when `maxBatch` is 1, otherwise a JSON array
//! of them. Any 2xx answer takes the batch; anything else, or no answer within the timeout, fails it.

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use super::SinkError;
use crate::shipper::config::WebhookConfig;
use crate::shipper::record::Record;

/// A response body kept for the error message, at most.
const BODY_IN_ERROR: usize = 512;

pub struct WebhookSink {
    client: reqwest::Client,
    url: reqwest::Url,
    template: Option<Template>,
    max_batch: usize,
    basic_auth: Option<(String, String)>,
}

impl WebhookSink {
    pub fn new(config: &WebhookConfig) -> Result<Self, String> {
        let url = reqwest::Url::parse(&config.url).map_err(|e| format!("url: {e}"))?;
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (name, value) in &config.headers {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| format!("headers: {e}"))?;
            let value = HeaderValue::from_str(value).map_err(|e| format!("headers: {e}"))?;
            headers.insert(name, value);
        }
        if let Some(token) = &config.bearer_token {
            let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| "bearerToken: not a header value")?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        let mut builder = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(Duration::from_secs(config.timeout_seconds))
            .connect_timeout(Duration::from_secs(config.timeout_seconds))
            .redirect(reqwest::redirect::Policy::none());
        if let Some(ca) = &config.ca_file {
            let pem = std::fs::read(ca).map_err(|e| format!("caFile {}: {e}", ca.display()))?;
            for certificate in reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("caFile {}: {e}", ca.display()))?
            {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let template = config.body_template.as_deref().map(Template::parse).transpose()?;
        Ok(WebhookSink {
            client: builder
                .build()
                .map_err(|e| format!("building the HTTP client: {e}"))?,
            url,
            template,
            max_batch: config.max_batch,
            basic_auth: config
                .basic_auth
                .as_ref()
                .map(|a| (a.username.clone(), a.password.clone())),
        })
    }

    pub fn max_batch(&self) -> usize {
        self.max_batch
    }

    pub async fn deliver(&mut self, records: &[Record]) -> Result<(), SinkError> {
        let mut items: Vec<Value> = Vec::with_capacity(records.len());
        for record in records {
            let value = serde_json::to_value(record).expect("a record serializes");
            items.push(match &self.template {
                Some(template) => template.render(&value),
                None => value,
            });
        }
        let body = if self.max_batch == 1 && items.len() == 1 {
            items.remove(0)
        } else {
            Value::Array(items)
        };
        let mut request = self
            .client
            .post(self.url.clone())
            .body(serde_json::to_vec(&body).expect("JSON serializes"));
        if let Some((username, password)) = &self.basic_auth {
            request = request.basic_auth(username, Some(password));
        }
        let response = request.send().await.map_err(SinkError::Request)?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        let body: String = body.chars().take(BODY_IN_ERROR).collect();
        Err(SinkError::Status {
            status: status.as_u16(),
            body,
        })
    }
}

/// A body template: text with `{{dotted.path}}` placeholders, each replaced by the JSON value at that
/// path of the record (`null` where there is none).
#[derive(Clone, Debug)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Clone, Debug)]
enum Part {
    Text(String),
    Path(Vec<String>),
}

impl Template {
    /// Parses `text`, and checks that it renders JSON.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("{{") {
            parts.push(Part::Text(rest[..start].to_string()));
            let after = &rest[start + 2..];
            let end = after.find("}}").ok_or_else(|| {
                format!(
                    "a {{{{ at byte {} is never closed",
                    text.len() - rest.len() + start
                )
            })?;
            let path = after[..end].trim();
            if path.is_empty() || path.split('.').any(str::is_empty) {
                return Err(format!(
                    "{{{{{path}}}}} is not a dotted path such as event.reason"
                ));
            }
            parts.push(Part::Path(path.split('.').map(str::to_string).collect()));
            rest = &after[end + 2..];
        }
        parts.push(Part::Text(rest.to_string()));
        let template = Template { parts };
        // Every placeholder stands for a JSON value; a string is the value that shows one misplaced (inside
        // quotes) whatever the record holds.
        let probe: String = template
            .parts
            .iter()
            .map(|part| match part {
                Part::Text(text) => text.as_str(),
                Part::Path(_) => "\"value\"",
            })
            .collect();
        serde_json::from_str::<Value>(&probe).map_err(|e| {
            format!("renders {probe:?}, which is not JSON ({e}); placeholders stand for JSON values, so write {{{{event.reason}}}}, not \"{{{{event.reason}}}}\"")
        })?;
        Ok(template)
    }

    fn render_text(&self, record: &Value) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Path(path) => {
                    let value = path
                        .iter()
                        .try_fold(record, |v, key| v.get(key))
                        .unwrap_or(&Value::Null);
                    out.push_str(&value.to_string());
                }
            }
        }
        out
    }

    /// Renders `record`; every value the template can produce is JSON (checked when it was parsed).
    pub fn render(&self, record: &Value) -> Value {
        let text = self.render_text(record);
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_substitute_json_values_and_are_checked() {
        let t = Template::parse(r#"{"text": {{event.reason}}, "id": {{deliveryId}}, "n": {{event.count}}, "x": {{event.nothing}}}"#).unwrap();
        let record = serde_json::json!({"deliveryId": "u-2", "event": {"reason": "Back\"Off", "count": 2}});
        assert_eq!(
            t.render(&record),
            serde_json::json!({"text": "Back\"Off", "id": "u-2", "n": 2, "x": null})
        );
        let quoted = Template::parse(r#"{"text": "{{event.reason}}"}"#).unwrap_err();
        assert!(quoted.contains("not JSON"), "{quoted}");
        assert!(
            Template::parse("{{event.reason")
                .unwrap_err()
                .contains("never closed")
        );
        assert!(
            Template::parse("{{a..b}}")
                .unwrap_err()
                .contains("not a dotted path")
        );
    }
}
