//! The API token (generated once per data dir and reused) and the kubeconfig that points kubectl at the
//! server with it.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::Context;
use rand::RngCore;

/// Reads the data dir's token, creating it (owner-readable only) on first start.
pub fn token(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join("token");
    match fs::read_to_string(&path) {
        Ok(token) if !token.trim().is_empty() => return Ok(token.trim().to_string()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    write_private(&path, format!("{token}\n").as_bytes())?;
    Ok(token)
}

/// Writes `DIR/kubeconfig` for the API at `server_url`, with the token and a current context.
pub fn write(
    data_dir: &Path,
    server_url: &str,
    ca_pem: &str,
    token: &str,
) -> anyhow::Result<std::path::PathBuf> {
    let path = data_dir.join("kubeconfig");
    let ca = base64(ca_pem.as_bytes());
    let config = format!(
        "apiVersion: v1
kind: Config
clusters:
- name: glasshouse
  cluster:
    server: {server_url}
    certificate-authority-data: {ca}
users:
- name: glasshouse
  user:
    token: {token}
contexts:
- name: glasshouse
  context:
    cluster: glasshouse
    user: glasshouse
    namespace: default
current-context: glasshouse
preferences: {{}}
"
    );
    write_private(&path, config.as_bytes())?;
    Ok(path)
}

fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Writes a file readable by its owner only, atomically (a reader never sees half of it).
pub fn write_private(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    file.write_all(contents)?;
    file.sync_all()?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o600))?;
    fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_generated_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let first = token(dir.path()).unwrap();
        assert_eq!(first.len(), 64);
        assert_eq!(token(dir.path()).unwrap(), first);
        let mode = fs::metadata(dir.path().join("token"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let path = write(dir.path(), "https://127.0.0.1:1", "CA", &first).unwrap();
        let text = fs::read_to_string(path).unwrap();
        assert!(text.contains("server: https://127.0.0.1:1") && text.contains(&first));
        assert!(text.contains("certificate-authority-data: Q0E="));
    }
}
