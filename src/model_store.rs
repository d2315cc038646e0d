//! Where the versions of the model live, so that a retrain or a rollback reaches every replica.
//!
//! - [`ModelStore::Dir`]: a [`ModelDir`] on disk (embedded mode; replicas on one host can share
//!   it). Installs are atomic file replacements.
//! - [`ModelStore::Redis`]: the model published through Redis (Redis mode), so every replica
//!   that shares the Redis serves the new version within a poll interval (one second by
//!   default). All keys share the hash tag `{model}`, so the multi-key transactions below run
//!   on a Redis Cluster too:
//!   - `hg:model:{model}:v:<version>`: the model file's bytes (checksummed; the version is the
//!     hash of the bytes, checked again on load, so a replica never serves a mix);
//!   - `hg:model:{model}:current`: the version in service;
//!   - `hg:model:{model}:history`: the versions kept, newest first (the last [`KEEP`]).
//!
//!   A publication writes the bytes first, then moves `current` and the history in one
//!   `MULTI`/`EXEC`, so a replica that sees the new `current` always finds its bytes. Replicas
//!   poll `current` (a few bytes) and fetch the model only when it changed.

use crate::model::file::version_of;
use crate::model::Model;
use crate::redis_conn::{RedisConn, RedisTarget, Timeouts};
use crate::retrain::{ModelDir, ModelDirError};

/// Versions kept in Redis (as in a model directory).
pub const KEEP: usize = ModelDir::KEEP;
const KEY_PREFIX: &str = "hg:model:{model}";

/// Moves `current` to the new version and keeps the newest `KEEP` in the history, deleting the
/// bytes of those that fall off; all in one step. (The bytes' keys are built here rather than
/// passed in, but share the `{model}` tag, so on a cluster they live in the same slot.)
const INSTALL_SCRIPT: &str = r#"
redis.call('SET', KEYS[1], ARGV[1])
redis.call('LREM', KEYS[2], 0, ARGV[1])
redis.call('LPUSH', KEYS[2], ARGV[1])
local keep = tonumber(ARGV[2])
local dropped = redis.call('LRANGE', KEYS[2], keep, -1)
redis.call('LTRIM', KEYS[2], 0, keep - 1)
for _, v in ipairs(dropped) do redis.call('DEL', ARGV[3] .. v) end
return #dropped
"#;

/// Makes the version after the current one in the history (the one installed before it)
/// current, and drops the current one from the history; in one step, so two rollbacks at once
/// go back two versions rather than racing. Returns {current, previous}, or {why} when there
/// is nothing to go back to.
const ROLLBACK_SCRIPT: &str = r#"
local current = redis.call('GET', KEYS[1])
if not current then return {'no current version to roll back from'} end
local history = redis.call('LRANGE', KEYS[2], 0, -1)
for i, v in ipairs(history) do
  if v == current then
    local previous = history[i + 1]
    if not previous then
      return {'the current version is the oldest kept; there is nothing to roll back to'}
    end
    redis.call('SET', KEYS[1], previous)
    redis.call('LREM', KEYS[2], 0, current)
    return {current, previous}
  end
end
return {'the current version is not in the history'}
"#;

/// Why the model store could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ModelStoreError {
    /// The model directory failed.
    #[error(transparent)]
    Dir(#[from] ModelDirError),
    /// Redis failed.
    #[error("model store in Redis: {0}")]
    Redis(String),
    /// A published model is bad.
    #[error("model {version} in Redis: {detail}")]
    BadModel {
        /// The version.
        version: String,
        /// What is wrong.
        detail: String,
    },
    /// There is no version, or none to go back to.
    #[error("{0}")]
    NoVersion(String),
}

/// The versions of the model, on disk or in Redis; see the module docs.
pub enum ModelStore {
    /// A model directory.
    Dir(ModelDir),
    /// Published through Redis.
    Redis(RedisModels),
}

impl std::fmt::Debug for ModelStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ModelStore::Dir(_) => "ModelStore::Dir",
            ModelStore::Redis(_) => "ModelStore::Redis",
        })
    }
}

impl ModelStore {
    /// A short name for logs.
    pub fn name(&self) -> &'static str {
        match self {
            ModelStore::Dir(_) => "directory",
            ModelStore::Redis(_) => "redis",
        }
    }

    /// The version in service, if one was ever installed.
    pub async fn current_version(&self) -> Result<Option<String>, ModelStoreError> {
        match self {
            ModelStore::Dir(d) => {
                let d = d.clone();
                blocking(move || Ok(d.current_version()?)).await
            }
            ModelStore::Redis(r) => r.current_version().await,
        }
    }

    /// Loads the version in service.
    pub async fn load_current(&self) -> Result<(Model, String), ModelStoreError> {
        match self {
            ModelStore::Dir(d) => {
                let d = d.clone();
                blocking(move || Ok(d.load_current()?)).await
            }
            ModelStore::Redis(r) => r.load_current().await,
        }
    }

    /// Installs `model` as a new version and makes it current; returns its version.
    pub async fn install(&self, model: &Model) -> Result<String, ModelStoreError> {
        match self {
            ModelStore::Dir(d) => {
                let (d, model) = (d.clone(), model.clone());
                blocking(move || Ok(d.install(&model)?)).await
            }
            ModelStore::Redis(r) => r.install(model.to_bytes()).await,
        }
    }

    /// Makes the version before the current one current again; returns it.
    pub async fn rollback(&self) -> Result<String, ModelStoreError> {
        match self {
            ModelStore::Dir(d) => {
                let d = d.clone();
                blocking(move || Ok(d.rollback()?)).await
            }
            ModelStore::Redis(r) => r.rollback().await,
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ModelStoreError> + Send + 'static,
) -> Result<T, ModelStoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ModelStoreError::Redis(format!("worker failed: {e}")))?
}

/// The model published through Redis. Connects on first use (and keeps trying on later ones),
/// so a Redis that is down at start-up does not stop the service.
pub struct RedisModels {
    target: RedisTarget,
    conn: tokio::sync::OnceCell<RedisConn>,
}

impl RedisModels {
    /// The store at `target`; nothing is connected yet.
    pub fn new(target: RedisTarget) -> RedisModels {
        RedisModels {
            target,
            conn: tokio::sync::OnceCell::new(),
        }
    }

    async fn conn(&self) -> Result<RedisConn, ModelStoreError> {
        self.conn
            .get_or_try_init(|| async {
                self.target
                    .connect(Timeouts {
                        connect: self.target.timeouts.connect,
                        // A model is a few MB: `redis.model_timeout_ms` gives the transfer time.
                        response: self.target.timeouts.model,
                    })
                    .await
                    .map_err(|e| ModelStoreError::Redis(format!("cannot connect: {e}")))
            })
            .await
            .cloned()
    }

    fn key(suffix: &str) -> String {
        format!("{KEY_PREFIX}:{suffix}")
    }

    /// The published version, if any.
    pub async fn current_version(&self) -> Result<Option<String>, ModelStoreError> {
        let mut conn = self.conn().await?;
        redis::cmd("GET")
            .arg(Self::key("current"))
            .query_async(&mut conn)
            .await
            .map_err(|e| ModelStoreError::Redis(e.to_string()))
    }

    /// Loads the published version; its bytes must hash to its name.
    pub async fn load_current(&self) -> Result<(Model, String), ModelStoreError> {
        let version = self
            .current_version()
            .await?
            .ok_or_else(|| ModelStoreError::NoVersion("no model is published in Redis".into()))?;
        let mut conn = self.conn().await?;
        let bytes: Option<Vec<u8>> = redis::cmd("GET")
            .arg(Self::key(&format!("v:{version}")))
            .query_async(&mut conn)
            .await
            .map_err(|e| ModelStoreError::Redis(e.to_string()))?;
        let bad = |detail: String| ModelStoreError::BadModel {
            version: version.clone(),
            detail,
        };
        let bytes = bytes.ok_or_else(|| bad("its bytes are missing".into()))?;
        if version_of(&bytes) != version {
            return Err(bad(format!(
                "its bytes hash to {}, not to its name",
                version_of(&bytes)
            )));
        }
        let model = Model::from_bytes(&bytes).map_err(|e| bad(e.to_string()))?;
        Ok((model, version))
    }

    /// Publishes a model file's bytes as the version in service; returns the version.
    pub async fn install(&self, bytes: Vec<u8>) -> Result<String, ModelStoreError> {
        let version = version_of(&bytes);
        let mut conn = self.conn().await?;
        let redis_err = |e: redis::RedisError| ModelStoreError::Redis(e.to_string());
        // The bytes first: whoever sees the new `current` finds them.
        redis::cmd("SET")
            .arg(Self::key(&format!("v:{version}")))
            .arg(bytes)
            .query_async::<()>(&mut conn)
            .await
            .map_err(redis_err)?;
        let dropped: i64 = redis::cmd("EVAL")
            .arg(INSTALL_SCRIPT)
            .arg(2)
            .arg(Self::key("current"))
            .arg(Self::key("history"))
            .arg(&version)
            .arg(KEEP)
            .arg(format!("{KEY_PREFIX}:v:"))
            .query_async(&mut conn)
            .await
            .map_err(redis_err)?;
        tracing::info!(model_version = %version, dropped, "model published in Redis");
        Ok(version)
    }

    /// Makes the version before the current one current again; returns it. The rolled-back
    /// version leaves the history, so a second rollback goes further back.
    pub async fn rollback(&self) -> Result<String, ModelStoreError> {
        let mut conn = self.conn().await?;
        let reply: Vec<String> = redis::cmd("EVAL")
            .arg(ROLLBACK_SCRIPT)
            .arg(2)
            .arg(Self::key("current"))
            .arg(Self::key("history"))
            .query_async(&mut conn)
            .await
            .map_err(|e| ModelStoreError::Redis(e.to_string()))?;
        let (current, previous) = match reply.as_slice() {
            [c, p] => (c.clone(), p.clone()),
            [why] => return Err(ModelStoreError::NoVersion(why.clone())),
            _ => return Err(ModelStoreError::Redis("unexpected rollback reply".into())),
        };
        tracing::info!(model_version = %previous, rolled_back = %current, "model rolled back in Redis");
        Ok(previous)
    }
}
