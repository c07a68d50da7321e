//! Opening the configured store backend.

use std::path::Path;
use std::sync::Arc;

use control_plane::store::Store;
use control_plane::store::redb::RedbStore;

use crate::config::StoreSpec;

pub async fn open(spec: &StoreSpec, data_dir: &Path) -> anyhow::Result<Arc<dyn Store>> {
    match spec {
        StoreSpec::Redb => {
            let path = data_dir.join("store.redb");
            let store =
                RedbStore::open(&path).map_err(|e| anyhow::anyhow!("opening {}: {e}", path.display()))?;
            Ok(Arc::new(store))
        }
        StoreSpec::Etcd(endpoints) => open_etcd(endpoints).await,
    }
}

#[cfg(feature = "etcd")]
async fn open_etcd(endpoints: &[String]) -> anyhow::Result<Arc<dyn Store>> {
    let store = control_plane::store::etcd::EtcdStore::connect(endpoints, "/glasshouse")
        .await
        .map_err(|e| anyhow::anyhow!("connecting to etcd at {}: {e}", endpoints.join(",")))?;
    Ok(Arc::new(store))
}

#[cfg(not(feature = "etcd"))]
async fn open_etcd(_endpoints: &[String]) -> anyhow::Result<Arc<dyn Store>> {
    anyhow::bail!(
        "this glasshouse was built without etcd support; build it with `cargo build --features etcd` \
         (the etcd client's build needs protoc: `apt-get install protobuf-compiler`)"
    )
}
