//! Citizens' messages received through e-Doręczenia: stored once, with their files, in the
//! transaction that enqueues their `verify` job, before the operator is told to delete them.

use chrono::Utc;
use sha2::{Digest, Sha256};

use super::{
    Begin, COUNT_PULL_AGAIN, INSERT_DELIVERY, INSERT_VERIFY_JOB, MARK_CONFIRMED, Store, StoreError,
    Stored,
};
use crate::document::{InboundChannel, ReceivedMessage};

/// A received message, unless its identity key is stored already. The ePUAP columns that
/// cannot be empty hold what their e-Doręczenia counterparts are (migration 0021).
const INSERT_RECEIVED: &str = "INSERT INTO inbound_document (identity_key, box_address, podmiot_identyfikator, \
     podmiot_typ_osoby, podmiot_zgoda, data_nadania, nazwa_skrytki, adres_skrytki, adres_odpowiedzi, \
     czy_testowe, dane_dodatkowe, nazwa_pliku, typ_pliku, content, content_sha256, skrot, received_at, \
     channel, channel_message_id, sender_address, subject, text_body) \
     VALUES ($1, $2, $3, '', FALSE, $4, $2, $2, $3, FALSE, $5, $6, $7, $8, $9, '', $10, $11, $12, $3, $13, $14) \
     ON CONFLICT (identity_key) DO NOTHING RETURNING id";

const INSERT_ATTACHMENT: &str = "INSERT INTO inbound_attachment (document_id, ordinal, file_name, content_type, \
     content, sha256) VALUES ($1, $2, $3, $4, $5, $6)";

impl Store {
    /// Stores a received message and enqueues its verification, in one committed
    /// transaction. A message whose identity key is stored already (fetched again after a
    /// crash before its deletion) is counted, not stored again.
    #[tracing::instrument(skip_all, fields(message = %message.message_id))]
    pub async fn store_received(&self, message: &ReceivedMessage) -> Result<Stored, StoreError> {
        let now = Utc::now();
        let key = message.identity_key();
        let (name, content_type, content) = message.document();
        let main = message.main_file();
        on_pool!(self, pool => {
            let mut tx = pool.begin_write().await?;
            let inserted: Option<i64> = sqlx::query_scalar(INSERT_RECEIVED)
                .bind(&key)
                .bind(&message.office_address)
                .bind(&message.sender_address)
                .bind(message.received_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                .bind(Vec::<u8>::new())
                .bind(&name)
                .bind(&content_type)
                .bind(&content)
                .bind(hex::encode(Sha256::digest(&content)))
                .bind(now)
                .bind(InboundChannel::Edoreczenia.as_str())
                .bind(&message.message_id)
                .bind(&message.subject)
                .bind(&message.text_body)
                .fetch_optional(&mut *tx)
                .await?;
            let stored = super::delivered!(tx, inserted, &message.office_address, &key, now, |id| {
                let others = message
                    .files
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| Some(*i) != main);
                for (ordinal, file) in others {
                    sqlx::query(INSERT_ATTACHMENT)
                        .bind(id)
                        .bind(ordinal as i64)
                        .bind(&file.name)
                        .bind(&file.content_type)
                        .bind(&file.content)
                        .bind(hex::encode(Sha256::digest(&file.content)))
                        .execute(&mut *tx)
                        .await?;
                }
            });
            tx.commit().await?;
            Ok(stored)
        })
    }

    /// The operator deleted received message `id` from the office's box (its
    /// acknowledgement): recorded as the delivery's confirmation.
    pub async fn mark_received_deleted(&self, id: i64) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            sqlx::query(MARK_CONFIRMED)
                .bind(Utc::now())
                .bind(id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }
}
