//! Single-use token ids (step-ca's `used_ott` bucket, `DB.UseToken`).

use std::time::SystemTime;

use crate::error::db;
use crate::{Result, Store, now_secs, to_secs};

/// Whether a token id was spent by this call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spent {
    /// First use: the token id is now spent.
    Fresh,
    /// The token id was spent before (by this or another replica): refuse the request.
    Replayed,
}

impl Store {
    /// Spends the token id `jti` of `provisioner`: [`Spent::Fresh`] for exactly one call per
    /// (provisioner, jti), however many run at once on however many replicas sharing the
    /// database — one `INSERT … ON CONFLICT DO NOTHING` on the primary key, whose row count
    /// is the answer. Spend only after the token verified and the request is otherwise
    /// valid, so a refused request does not use up the token.
    ///
    /// `expires_at`: when the token can no longer be accepted anyway (its `exp` plus the
    /// clock leeway); [`Store::purge_spent_tokens`] forgets the id after that.
    pub async fn spend_token(
        &self,
        provisioner: &str,
        jti: &str,
        expires_at: SystemTime,
    ) -> Result<Spent> {
        let expires_at = to_secs("token expiry", expires_at)?;
        let done = sqlx::query(
            "INSERT INTO spent_tokens (provisioner, jti, expires_at, spent_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (provisioner, jti) DO NOTHING",
        )
        .bind(provisioner)
        .bind(jti)
        .bind(expires_at)
        .bind(now_secs()?)
        .execute(self.pool())
        .await
        .map_err(db("spending a token id"))?;
        Ok(if done.rows_affected() == 1 { Spent::Fresh } else { Spent::Replayed })
    }

    /// Forgets one spent id of `provisioner` whatever its expiry — the operator's reset of
    /// an instance's trust-on-first-use record (step-ca has no such command,
    /// certificates#99). Returns whether there was one.
    pub async fn forget_spent_token(&self, provisioner: &str, jti: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM spent_tokens WHERE provisioner = $1 AND jti = $2")
            .bind(provisioner)
            .bind(jti)
            .execute(self.pool())
            .await
            .map_err(db("forgetting a spent token id"))?;
        Ok(done.rows_affected() == 1)
    }

    /// The spent ids of `provisioner` that start with `prefix` (trust-on-first-use records
    /// are `tofu:<instance>`), oldest first, with when each was spent.
    pub async fn spent_tokens_with_prefix(
        &self,
        provisioner: &str,
        prefix: &str,
    ) -> Result<Vec<(String, SystemTime)>> {
        use sqlx::Row as _;
        let rows = sqlx::query(
            "SELECT jti, spent_at FROM spent_tokens WHERE provisioner = $1 ORDER BY spent_at, jti",
        )
        .bind(provisioner)
        .fetch_all(self.pool())
        .await
        .map_err(db("listing spent token ids"))?;
        let mut out = Vec::new();
        for row in rows {
            let jti: String = row.try_get("jti").map_err(db("reading a spent token id"))?;
            let spent_at: i64 = row.try_get("spent_at").map_err(db("reading a spent token id"))?;
            if jti.starts_with(prefix) {
                out.push((jti, crate::from_secs("spent_at", spent_at)?));
            }
        }
        Ok(out)
    }

    /// Forgets the token ids whose `expires_at` is before `now`; returns how many.
    pub async fn purge_spent_tokens(&self, now: SystemTime) -> Result<u64> {
        let done = sqlx::query("DELETE FROM spent_tokens WHERE expires_at < $1")
            .bind(to_secs("now", now)?)
            .execute(self.pool())
            .await
            .map_err(db("purging spent token ids"))?;
        Ok(done.rows_affected())
    }
}
