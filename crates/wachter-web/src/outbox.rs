//! The outbox actions an analyst may take on a message not sent yet (retry a held one,
//! cancel one still waiting), shared by the API (`POST /api/v1/messages/{ticket}/…`) and
//! the campaign page's forms.

use wachter_store::{Store, StoreError};

use crate::auth::{CurrentUser, Role};
use crate::error::WebError;
use crate::pool::StorePool;

/// The longest ticket looked up; anything longer is no ticket of ours.
const MAX_TICKET_CHARS: usize = 100;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutboxAction {
    /// Queues a held message again.
    Retry,
    /// Cancels a queued or held message: its findings count as not told.
    Cancel,
}

impl OutboxAction {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxAction::Retry => "retry",
            OutboxAction::Cancel => "cancel",
        }
    }

    /// Applies the action to message `ticket` on behalf of `user` (the analyst role and,
    /// for a token, the `write` scope). `belongs` says whether the ticket is the message
    /// meant (it exists; it is one of the campaign's); if not, `NotFound`. Returns how many
    /// messages changed state: 0 when the message was in no state the action applies to.
    pub async fn apply<F>(
        self,
        pool: &StorePool,
        user: &CurrentUser,
        ticket: String,
        belongs: F,
    ) -> Result<u64, WebError>
    where
        F: FnOnce(&Store, &str) -> Result<bool, StoreError> + Send + 'static,
    {
        user.require(Role::Analyst, true)?;
        if !plausible_ticket(&ticket) {
            return Err(WebError::NotFound);
        }
        let tickets = [ticket.clone()];
        let changed = pool
            .find(move |store| {
                if !belongs(store, &tickets[0])? {
                    return Ok(None);
                }
                let changed = match self {
                    OutboxAction::Retry => store.requeue_messages(Some(&tickets))?,
                    OutboxAction::Cancel => store.cancel_messages(&tickets)?,
                };
                Ok(Some(changed))
            })
            .await?;
        tracing::info!(user = %user.name, %ticket, action = self.as_str(), changed, "outbox action");
        Ok(changed)
    }
}

/// Letters, digits, `-`, `_` and `.`: what the store's tickets are made of.
fn plausible_ticket(ticket: &str) -> bool {
    !ticket.is_empty()
        && ticket.len() <= MAX_TICKET_CHARS
        && ticket
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}
