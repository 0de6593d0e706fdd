//! Scale-out: several instances joined through Redis (feature `redis`, `--redis-url`).
//!
//! # Model
//!
//! - Each instance has a random id and subscribes to its own channel `<prefix>inst:<id>`.
//! - A registration is the key `<prefix>id:<identity>` holding `<instance>/<session>`, with a
//!   lease ([`ClusterConfig::lease`]) that the owning instance refreshes every
//!   [`ClusterConfig::refresh`]. An instance that dies stops refreshing, so its registrations
//!   vanish within one lease.
//! - A signal to an identity that is not registered locally runs one Lua script: read the key,
//!   `PUBLISH` the signal on the owner's channel, return how many subscribers got it (0: the
//!   owner instance is gone, so the peer is unknown). A session awaits each script before it
//!   reads its next frame, and every script goes through one multiplexed connection, so the
//!   signals of one sender reach the owner's channel in the order they were sent; the owner
//!   handles its channel's messages in order, so per sender and recipient the order is the
//!   same as within one instance.
//! - Registering sets the key (`SET ... GET`) and, when it held another instance's session,
//!   publishes a `replace` notice to that instance, which tells its session `replaced` (only
//!   if that session is still the one named in the notice).
//! - A supervisor task owns the Redis connections. When Redis goes away it reconnects with a
//!   backoff, subscribes again and re-announces every local registration (the refresh sets a
//!   missing key), so a Redis restart needs no restart of the instances. While Redis is away,
//!   local signals still flow and signals to other instances are refused as `unknown_peer`.
//!
//! Redis is trusted infrastructure, but its messages are still parsed strictly: a malformed
//! one is dropped and counted, never a panic. Every Redis call has a timeout.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use redis::aio::MultiplexedConnection;
use redis::{Client, Script};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::metrics::Metrics;
use crate::protocol::{ConnectionId, Identity, Payload, ServerMessage};
use crate::registry::Outbound;
use crate::server::Shared;

/// How an instance joins others through Redis. See the [module docs](self).
#[derive(Clone)]
pub struct ClusterConfig {
    /// The Redis URL, like `redis://127.0.0.1:6379/0` or `redis://:password@host:6379`.
    /// Plain TCP only (run Redis on a private network, or put a TLS tunnel in front).
    pub redis_url: String,
    /// Prefix of every key and channel, so several deployments can share one Redis.
    /// Default `lw:`.
    pub key_prefix: String,
    /// How long a registration survives without a refresh: an instance that dies loses its
    /// registrations within this time. Default 5 s.
    pub lease: Duration,
    /// How often an instance refreshes the leases of its registrations. Must be well under
    /// [`ClusterConfig::lease`]. Default 1.5 s.
    pub refresh: Duration,
    /// Longest any one Redis call may take before it counts as failed. Default 1 s.
    pub timeout: Duration,
}

impl ClusterConfig {
    /// Defaults for `redis_url`.
    pub fn new(redis_url: impl Into<String>) -> Self {
        Self {
            redis_url: redis_url.into(),
            key_prefix: "lw:".into(),
            lease: Duration::from_secs(5),
            refresh: Duration::from_millis(1500),
            timeout: Duration::from_secs(1),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        Client::open(self.redis_url.as_str())
            .map_err(|e| format!("cluster.redis_url is not a valid Redis URL: {e}"))?;
        if self.lease < Duration::from_millis(100) {
            return Err("cluster.lease must be at least 100 ms".into());
        }
        if self.refresh.is_zero() || self.refresh * 2 > self.lease {
            return Err("cluster.refresh must be positive and at most half of cluster.lease".into());
        }
        if self.timeout.is_zero() {
            return Err("cluster.timeout must be positive".into());
        }
        Ok(())
    }
}

impl std::fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: show the address only.
        let addr = Client::open(self.redis_url.as_str())
            .map(|c| c.get_connection_info().addr().to_string())
            .unwrap_or_else(|_| "<invalid>".into());
        f.debug_struct("ClusterConfig")
            .field("redis", &addr)
            .field("key_prefix", &self.key_prefix)
            .field("lease", &self.lease)
            .field("refresh", &self.refresh)
            .finish()
    }
}

/// A message on an instance's channel.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum ClusterMsg {
    /// A signal for an identity registered on the receiving instance.
    Signal { to: Identity, from: Identity, connection: ConnectionId, payload: Payload },
    /// `identity`'s registration `owner` (`<instance>/<session>`) was taken over elsewhere.
    /// Built by the announce script.
    Replace { identity: Identity, owner: String },
}

/// What became of a signal sent to another instance.
pub(crate) enum Route {
    /// Published to the owner instance's channel.
    Delivered,
    /// Nobody holds the identity (or its instance is gone).
    Unknown,
    /// Redis cannot be reached now.
    Unavailable,
}

/// Reads the key; publishes ARGV[2] on the owner's channel. -1: no owner; -2: the owner is
/// this instance (a stale key: the session is gone); else the number of subscribers reached.
const ROUTE_LUA: &str = r"
local owner = redis.call('GET', KEYS[1])
if not owner then return -1 end
local inst = string.match(owner, '^(.-)/')
if not inst then return -1 end
if inst == ARGV[3] then return -2 end
return redis.call('PUBLISH', ARGV[1] .. inst, ARGV[2])
";

/// Sets the key to ARGV[1] with a lease of ARGV[2] ms; if it held a session of another
/// instance, publishes a `replace` notice to that instance and returns 1.
const ANNOUNCE_LUA: &str = r"
local old = redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'GET')
if old and old ~= ARGV[1] then
  local inst = string.match(old, '^(.-)/')
  if inst and inst ~= ARGV[3] then
    redis.call('PUBLISH', ARGV[4] .. inst,
      cjson.encode({type = 'replace', identity = ARGV[5], owner = old}))
    return 1
  end
end
return 0
";

/// For each key: 1 if it holds its value (lease renewed), 2 if it was missing (set again:
/// the re-announce after a Redis restart), 0 if another session holds it now.
const REFRESH_LUA: &str = r"
local out = {}
for i, key in ipairs(KEYS) do
  local val = ARGV[i + 1]
  local cur = redis.call('GET', key)
  if cur == val then
    redis.call('PEXPIRE', key, ARGV[1])
    out[i] = 1
  elseif not cur then
    redis.call('SET', key, val, 'PX', ARGV[1])
    out[i] = 2
  else
    out[i] = 0
  end
end
return out
";

/// Deletes the key if it still holds ARGV[1].
const WITHDRAW_LUA: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// Keys per refresh script call: bounds one script's run time inside Redis.
const REFRESH_BATCH: usize = 256;
/// Reconnection backoff.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// One instance's membership of the cluster.
pub(crate) struct Cluster {
    config: ClusterConfig,
    client: Client,
    /// This instance's random id (hex).
    instance: String,
    /// The command connection, while Redis is reachable.
    conn: Mutex<Option<MultiplexedConnection>>,
    route: Script,
    announce: Script,
    refresh: Script,
    withdraw: Script,
}

fn random_hex() -> String {
    // RandomState is seeded from the OS's randomness; mixing in time and pid keeps two ids
    // apart even if it were not.
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let mut a = RandomState::new().build_hasher();
    a.write_u128(nanos);
    a.write_u32(std::process::id());
    let mut b = RandomState::new().build_hasher();
    b.write_u64(a.finish());
    format!("{:016x}{:016x}", a.finish(), b.finish())
}

impl Cluster {
    /// Checks the configuration; connects later, in [`Cluster::spawn`].
    pub(crate) fn new(config: ClusterConfig) -> Result<Self, String> {
        config.validate()?;
        let client = Client::open(config.redis_url.as_str())
            .map_err(|e| format!("cluster.redis_url: {e}"))?;
        Ok(Self {
            config,
            client,
            instance: random_hex(),
            conn: Mutex::new(None),
            route: Script::new(ROUTE_LUA),
            announce: Script::new(ANNOUNCE_LUA),
            refresh: Script::new(REFRESH_LUA),
            withdraw: Script::new(WITHDRAW_LUA),
        })
    }

    /// This instance's id.
    pub(crate) fn instance(&self) -> &str {
        &self.instance
    }

    fn key(&self, identity: &Identity) -> String {
        format!("{}id:{identity}", self.config.key_prefix)
    }

    fn channel_prefix(&self) -> String {
        format!("{}inst:", self.config.key_prefix)
    }

    fn owner(&self, session: u64) -> String {
        format!("{}/{session}", self.instance)
    }

    fn lease_ms(&self) -> u64 {
        u64::try_from(self.config.lease.as_millis()).unwrap_or(u64::MAX)
    }

    fn connection(&self) -> Option<MultiplexedConnection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn set_connection(&self, conn: Option<MultiplexedConnection>) {
        *self.conn.lock().unwrap_or_else(PoisonError::into_inner) = conn;
    }

    /// Runs `f` on the command connection within the timeout; `None` if Redis is away or the
    /// call failed (logged and counted).
    async fn call<T, F, Fut>(&self, metrics: &Metrics, what: &str, f: F) -> Option<T>
    where
        F: FnOnce(MultiplexedConnection) -> Fut,
        Fut: Future<Output = redis::RedisResult<T>>,
    {
        let conn = self.connection()?;
        match tokio::time::timeout(self.config.timeout, f(conn)).await {
            Ok(Ok(v)) => Some(v),
            Ok(Err(e)) => {
                Metrics::inc(&metrics.redis_errors_total);
                warn!(error = %e, "redis {what} failed");
                None
            }
            Err(_) => {
                Metrics::inc(&metrics.redis_errors_total);
                warn!("redis {what} timed out");
                None
            }
        }
    }

    /// Sends a signal to `to` on whichever instance holds it.
    pub(crate) async fn route(
        &self,
        metrics: &Metrics,
        from: Identity,
        to: Identity,
        connection: ConnectionId,
        payload: Payload,
    ) -> Route {
        let key = self.key(&to);
        let msg = ClusterMsg::Signal { to, from, connection, payload };
        let Ok(text) = serde_json::to_string(&msg) else { return Route::Unavailable };
        let reached: Option<i64> = self
            .call(metrics, "route", |mut conn| async move {
                let mut inv = self.route.key(key);
                inv.arg(self.channel_prefix()).arg(text).arg(&self.instance);
                inv.invoke_async(&mut conn).await
            })
            .await;
        match reached {
            None => Route::Unavailable,
            Some(n) if n > 0 => {
                Metrics::inc(&metrics.cluster_signals_out_total);
                Route::Delivered
            }
            Some(_) => Route::Unknown,
        }
    }

    /// Claims `identity` for `session` in Redis; a registration on another instance is told it
    /// was replaced. If Redis is away the registration is local only until the supervisor
    /// reconnects and re-announces it.
    pub(crate) async fn announce(&self, metrics: &Metrics, identity: &Identity, session: u64) {
        let key = self.key(identity);
        let replaced: Option<i64> = self
            .call(metrics, "announce", |mut conn| async move {
                let mut inv = self.announce.key(key);
                inv.arg(self.owner(session))
                    .arg(self.lease_ms())
                    .arg(&self.instance)
                    .arg(self.channel_prefix())
                    .arg(identity.as_str());
                inv.invoke_async(&mut conn).await
            })
            .await;
        if replaced == Some(1) {
            Metrics::inc(&metrics.replacements_total);
            info!(%identity, "registration replaced one on another instance");
        }
    }

    /// Releases `identity` if `session` still holds it.
    pub(crate) async fn withdraw(&self, metrics: &Metrics, identity: &Identity, session: u64) {
        let key = self.key(identity);
        let _: Option<i64> = self
            .call(metrics, "withdraw", |mut conn| async move {
                let mut inv = self.withdraw.key(key);
                inv.arg(self.owner(session));
                inv.invoke_async(&mut conn).await
            })
            .await;
    }

    /// Renews the leases of every local registration (and sets missing keys again). Sessions
    /// whose identity another session holds now are told they were replaced. `false` if a
    /// Redis call failed.
    async fn refresh_all(&self, shared: &Shared) -> bool {
        let entries = shared.registry.sessions();
        for batch in entries.chunks(REFRESH_BATCH) {
            let keys: Vec<String> = batch.iter().map(|(id, _)| self.key(id)).collect();
            let vals: Vec<String> = batch.iter().map(|(_, s)| self.owner(*s)).collect();
            let result: Option<Vec<i64>> = self
                .call(&shared.metrics, "refresh", |mut conn| async move {
                    let mut inv = self.refresh.prepare_invoke();
                    for k in keys {
                        inv.key(k);
                    }
                    inv.arg(self.lease_ms());
                    for v in vals {
                        inv.arg(v);
                    }
                    inv.invoke_async(&mut conn).await
                })
                .await;
            let Some(result) = result else { return false };
            for ((identity, session), status) in batch.iter().zip(result) {
                match status {
                    0 => self.kick(shared, identity, *session),
                    2 => debug!(%identity, "registration announced again"),
                    _ => {}
                }
            }
        }
        true
    }

    /// Ends the local registration of `identity` by `session` (if it is still that one).
    fn kick(&self, shared: &Shared, identity: &Identity, session: u64) {
        if let Some(entry) = shared.registry.take_if(identity, session) {
            info!(%identity, session, "registration taken over on another instance");
            // Err: the session is already gone.
            let _ = entry.tx.send(Outbound::Replaced);
        }
    }

    /// Handles one message from this instance's channel.
    fn on_message(&self, shared: &Shared, bytes: &[u8]) {
        let metrics = &shared.metrics;
        let max = shared.config.limits.max_frame_bytes.saturating_mul(2).saturating_add(1024);
        let msg = if bytes.len() > max {
            Err("too large".to_owned())
        } else {
            serde_json::from_slice::<ClusterMsg>(bytes).map_err(|e| e.to_string())
        };
        match msg {
            Err(e) => {
                Metrics::inc(&metrics.cluster_malformed_total);
                warn!(error = %e, len = bytes.len(), "malformed message from redis dropped");
            }
            Ok(ClusterMsg::Signal { to, from, connection, payload }) => {
                Metrics::inc(&metrics.cluster_signals_in_total);
                let Some(entry) = shared.registry.lookup(&to) else {
                    Metrics::inc(&metrics.cluster_dropped_total);
                    debug!(%to, %from, "signal from another instance for nobody here");
                    return;
                };
                let text = ServerMessage::Signal { from, connection, payload }.to_json();
                let permit = u32::try_from(text.len())
                    .ok()
                    .and_then(|n| Arc::clone(&entry.budget).try_acquire_many_owned(n).ok());
                let Some(permit) = permit else {
                    Metrics::inc(&metrics.cluster_dropped_total);
                    debug!(%to, "recipient busy; signal from another instance dropped");
                    return;
                };
                if entry.tx.send(Outbound::Relay { text, _permit: permit }).is_err() {
                    Metrics::inc(&metrics.cluster_dropped_total);
                }
            }
            Ok(ClusterMsg::Replace { identity, owner }) => {
                let session = owner
                    .split_once('/')
                    .filter(|(inst, _)| *inst == self.instance)
                    .and_then(|(_, s)| s.parse::<u64>().ok());
                match session {
                    Some(session) => self.kick(shared, &identity, session),
                    None => {
                        Metrics::inc(&metrics.cluster_malformed_total);
                        warn!(%identity, "replace notice for another instance dropped");
                    }
                }
            }
        }
    }
}

/// Starts the supervisor: connects (and reconnects) to Redis, subscribes, refreshes leases and
/// dispatches this instance's channel, until shutdown.
pub(crate) fn spawn(
    shared: Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) -> Option<JoinHandle<()>> {
    shared.cluster.as_ref()?;
    Some(tokio::spawn(supervise(shared, shutdown)))
}

async fn supervise(shared: Arc<Shared>, mut shutdown: watch::Receiver<bool>) {
    let Some(cluster) = shared.cluster.as_ref() else { return };
    let metrics = &shared.metrics;
    let mut backoff = BACKOFF_MIN;
    let channel = format!("{}{}", cluster.channel_prefix(), cluster.instance);
    info!(instance = %cluster.instance, config = ?cluster.config, "joining the cluster");
    loop {
        let connect = async {
            let mut pubsub = cluster.client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            let conn = cluster.client.get_multiplexed_async_connection().await?;
            redis::RedisResult::Ok((pubsub, conn))
        };
        let attempt = tokio::select! {
            _ = shutdown.changed() => return,
            r = tokio::time::timeout(cluster.config.timeout * 2, connect) => r,
        };
        let (pubsub, conn) = match attempt {
            Ok(Ok(pair)) => pair,
            Ok(Err(e)) => {
                Metrics::inc(&metrics.redis_errors_total);
                warn!(error = %e, retry_in = ?backoff, "cannot connect to redis");
                tokio::select! {
                    _ = shutdown.changed() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
            Err(_) => {
                Metrics::inc(&metrics.redis_errors_total);
                warn!(retry_in = ?backoff, "connecting to redis timed out");
                tokio::select! {
                    _ = shutdown.changed() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        backoff = BACKOFF_MIN;
        cluster.set_connection(Some(conn));
        metrics.redis_connected.store(1, std::sync::atomic::Ordering::Relaxed);
        Metrics::inc(&metrics.redis_connects_total);
        info!(instance = %cluster.instance, "connected to redis; subscribed");

        // Announce every registration at once (a Redis restart lost them), then refresh.
        let refresher = {
            let shared = Arc::clone(&shared);
            tokio::spawn(async move {
                let Some(cluster) = shared.cluster.as_ref() else { return };
                let mut tick = tokio::time::interval(cluster.config.refresh);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tick.tick().await;
                    if !cluster.refresh_all(&shared).await {
                        return;
                    }
                }
            })
        };
        let mut refresher = AbortOnDrop(refresher);
        let mut stream = pubsub.into_on_message();
        let stop = loop {
            tokio::select! {
                _ = shutdown.changed() => break true,
                msg = stream.next() => match msg {
                    Some(msg) => cluster.on_message(&shared, msg.get_payload_bytes()),
                    None => {
                        warn!("redis subscription lost; reconnecting");
                        break false;
                    }
                },
                _ = &mut refresher.0 => {
                    warn!("redis refresh failed; reconnecting");
                    break false;
                }
            }
        };
        cluster.set_connection(None);
        metrics.redis_connected.store(0, std::sync::atomic::Ordering::Relaxed);
        drop(refresher);
        if stop {
            return;
        }
    }
}

struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_ids_differ_and_have_no_slash() {
        let (a, b) = (random_hex(), random_hex());
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn replace_notice_from_lua_parses() {
        // cjson escapes '/' and orders fields as it likes.
        let json = r#"{"owner":"abc\/7","identity":"str:a","type":"replace"}"#;
        match serde_json::from_str::<ClusterMsg>(json) {
            Ok(ClusterMsg::Replace { identity, owner }) => {
                assert_eq!(identity.as_str(), "str:a");
                assert_eq!(owner, "abc/7");
            }
            other => panic!("{other:?}"),
        }
        assert!(serde_json::from_str::<ClusterMsg>(r#"{"type":"replace"}"#).is_err());
        assert!(serde_json::from_str::<ClusterMsg>(r#"{"type":"signal","to":"bad"}"#).is_err());
    }

    #[test]
    fn config_validation() {
        assert!(ClusterConfig::new("redis://127.0.0.1:6379").validate().is_ok());
        assert!(ClusterConfig::new("http://x").validate().is_err());
        let mut c = ClusterConfig::new("redis://127.0.0.1:6379");
        c.refresh = c.lease;
        assert!(c.validate().is_err());
        let shown = format!("{:?}", ClusterConfig::new("redis://:hunter2@127.0.0.1:6379"));
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
