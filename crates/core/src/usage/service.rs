//! Writing the noted credential uses: the services the server calls.

use super::Credential;
use crate::service::{ServiceError, Services};

impl Services {
    /// Write the uses noted since the last flush, in one write per kind of
    /// credential. How many records changed. A batch whose write fails is
    /// noted again, for the next flush.
    pub async fn flush_usage(&self) -> Result<u64, ServiceError> {
        let taken = self.usage.take(self.now_ms());
        if taken.is_empty() {
            return Ok(0);
        }
        let of = |kind: Credential| -> Vec<(i64, i64)> {
            taken
                .iter()
                .filter(|((k, _), _)| *k == kind)
                .map(|((_, id), at)| (*id, *at))
                .collect()
        };
        let tokens = of(Credential::PersonalAccessToken);
        let secrets = of(Credential::ApplicationSecret);
        let written = async {
            let n = self.store.record_token_usage(tokens).await?;
            Ok::<u64, crate::error::StoreError>(n + self.store.record_secret_usage(secrets).await?)
        };
        match written.await {
            Ok(n) => Ok(n),
            Err(e) => {
                self.usage.restore(taken);
                Err(e.into())
            }
        }
    }

    /// Note that a personal access token authenticated a request that
    /// was let through (see [`crate::usage`]).
    pub fn token_used(&self, token_id: i64) {
        self.usage
            .note(Credential::PersonalAccessToken, token_id, self.now_ms());
    }
}
