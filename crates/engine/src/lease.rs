//! A connector's lease held while one of its runs goes on, by `serve`'s scheduler and by
//! `sync` alike: taken for a tick, renewed in the background, released at the end.
//!
//! The lease lasts a short time to live and is renewed every third of it, so a process that
//! dies mid-run (kill -9, a lost node) stops renewing and another takes over once it runs out;
//! taking it marks the dead holder's run abandoned ([`Store::try_lease`]).

use std::time::Duration;

use chrono::{DateTime, Utc};
use surveyor_store::{Backend, LeaseRow, Store, StoreError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long a lease lasts without renewal, on each database.
///
/// On Postgres replicas wait for each other's leases, so they are short: a dead replica's
/// connector runs again within about a minute. On SQLite the renewal needs the one writer
/// connection, which a run's scope transaction may hold for tens of seconds on a large
/// catalog; a lease that ran out under a live run would let a second process start the same
/// connector, so it lasts longer there (only processes on one host share a SQLite file).
pub fn default_ttl(backend: Backend) -> Duration {
    match backend {
        Backend::Postgres => Duration::from_secs(30),
        Backend::Sqlite => Duration::from_secs(300),
    }
}

/// This process's name in leases: host and pid.
pub fn this_process() -> String {
    format!("{}:{}", this_host(), std::process::id())
}

fn this_host() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Whether `holder` names a process on this host that no longer exists. Anything else (another
/// host, a process that exists or may exist) is presumed alive and waited for.
fn is_gone(holder: &str) -> bool {
    let Some((host, pid)) = holder.rsplit_once(':') else {
        return false;
    };
    let Ok(pid) = pid.parse::<i32>() else {
        return false;
    };
    host == this_host() && pid > 0 && !process_exists(pid)
}

#[cfg(unix)]
fn process_exists(pid: i32) -> bool {
    // Signal 0 checks without signalling: ESRCH means no such process; EPERM means one that
    // is not ours, which exists.
    // SAFETY: kill with signal 0 has no effect on any process.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
}

#[cfg(not(unix))]
fn process_exists(_pid: i32) -> bool {
    true
}

/// A lease this process holds. Dropping it stops the renewals (the lease then runs out);
/// [`Lease::release`] gives it up at once.
pub struct Lease {
    store: Store,
    name: String,
    holder: String,
    renewer: JoinHandle<()>,
    lost: watch::Receiver<Option<String>>,
}

impl Lease {
    /// Takes `name`'s lease for the run at `tick`, or `None` when another process holds it
    /// (or already ran this tick).
    pub async fn take(
        store: &Store,
        name: &str,
        holder: &str,
        tick: DateTime<Utc>,
        ttl: Duration,
    ) -> Result<Option<Self>, StoreError> {
        let ttl = ttl.max(Duration::from_secs(1));
        let now = Utc::now();
        let expires_at = now + chrono_ttl(ttl);
        if !store.try_lease(name, holder, tick, expires_at, now).await? {
            // A holder on this host whose process is gone will never renew: take over now
            // instead of waiting for its lease to run out (git's gc.pid does the same).
            let Some(dead) = holder_of(store, name)
                .await
                .filter(|l| l.holder != holder && is_gone(&l.holder))
            else {
                return Ok(None);
            };
            if !store
                .take_over_lease(name, &dead.holder, holder, tick, expires_at, now)
                .await?
            {
                return Ok(None);
            }
            tracing::info!(connector = %name, dead = %dead.holder, "took over the lease of a process that is gone");
        }
        let (lost_tx, lost) = watch::channel(None);
        let renewer = tokio::spawn(renew(
            store.clone(),
            name.to_string(),
            holder.to_string(),
            ttl,
            lost_tx,
        ));
        Ok(Some(Self {
            store: store.clone(),
            name: name.to_string(),
            holder: holder.to_string(),
            renewer,
            lost,
        }))
    }

    /// Resolves, with the reason, when the lease is lost: another process took it, or it could
    /// not be renewed before it ran out. The run under it must stop.
    pub async fn lost(&mut self) -> String {
        let reason = match self.lost.wait_for(Option::is_some).await {
            Ok(reason) => reason.clone(),
            // The renewer is gone without a word (it was stopped): nothing more will happen.
            Err(_) => None,
        };
        match reason {
            Some(reason) => reason,
            None => std::future::pending().await,
        }
    }

    /// Stops renewing and gives the lease up, so the next tick (or another replica) need not
    /// wait for it to run out.
    pub async fn release(self) {
        self.renewer.abort();
        if let Err(e) = self
            .store
            .release_lease(&self.name, &self.holder, Utc::now())
            .await
        {
            tracing::warn!(connector = %self.name, error = %e, "could not release the lease; it runs out by itself");
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

/// Who holds `name`'s lease now, if anyone (for a refusal that says who and since when).
pub async fn holder_of(store: &Store, name: &str) -> Option<LeaseRow> {
    let now = Utc::now();
    store
        .leases()
        .await
        .ok()?
        .into_iter()
        .find(|l| l.name == name && l.expires_at > now)
}

fn chrono_ttl(ttl: Duration) -> chrono::Duration {
    chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::seconds(30))
}

/// Renews every third of the time to live, on its own task so that a run never waits for it
/// (and it never waits for the run). A failed renewal is tried again until the lease would
/// have run out.
async fn renew(
    store: Store,
    name: String,
    holder: String,
    ttl: Duration,
    lost: watch::Sender<Option<String>>,
) {
    let every = ttl / 3;
    let mut renewed_at = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(every).await;
        match store
            .renew_lease(&name, &holder, Utc::now() + chrono_ttl(ttl))
            .await
        {
            Ok(true) => renewed_at = tokio::time::Instant::now(),
            Ok(false) => {
                let _ = lost.send(Some("the lease was taken by another process".into()));
                return;
            }
            Err(e) => {
                tracing::warn!(connector = %name, error = %e, "could not renew the lease");
                if renewed_at.elapsed() >= ttl {
                    let _ = lost.send(Some(format!(
                        "the lease could not be renewed for {ttl:?}: {e}"
                    )));
                    return;
                }
            }
        }
    }
}
