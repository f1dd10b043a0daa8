//! [`Tags`]: the key/value tags of certificates. A certificate has at most one value per key;
//! tags are deleted with their certificate (`ON DELETE CASCADE`).

use async_trait::async_trait;
use scm_proto::{CertificateId, DomainId};

use crate::pool::{BUMP_CERTIFICATES, db_run};
use crate::{Result, SqlStore};

/// One tag of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagRecord {
    /// Key, unique per certificate.
    pub key: String,
    /// Value (may be empty).
    pub value: String,
}

crate::row::from_row!(TagRecord { key [column "tag_key"], value [column "tag_value"] });

/// A tag and the certificate it is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateTag {
    /// The certificate.
    pub cert_id: CertificateId,
    /// The tag.
    pub tag: TagRecord,
}

/// The tags of certificates.
#[async_trait]
pub trait Tags: Send + Sync {
    /// The tags of one certificate, by key.
    async fn tags_of(&self, cert: &CertificateId) -> Result<Vec<TagRecord>>;
    /// Adds `tags` to a certificate of `account` (a key it has already gets the new value), in
    /// one transaction, unless the certificate would then have more than `max` tags: then
    /// nothing is written and the answer is `false`.
    async fn put_tags(
        &self,
        account: &DomainId,
        cert: &CertificateId,
        tags: &[TagRecord],
        max: u32,
        now_ms: i64,
    ) -> Result<bool>;
    /// Deletes the tags of a certificate whose key is one of `keys` (unknown keys are ignored).
    async fn delete_tags(&self, cert: &CertificateId, keys: &[String]) -> Result<()>;
    /// Every tag on the certificates of `account`, by key, value and certificate.
    async fn account_tags(&self, account: &DomainId) -> Result<Vec<CertificateTag>>;
    /// Every certificate of `account`, id and name, newest first: the candidates of a query by
    /// tags.
    async fn certificate_names(&self, account: &DomainId) -> Result<Vec<(CertificateId, String)>>;
}

struct NameRow {
    id: CertificateId,
    name: String,
}

crate::row::from_row!(NameRow { id [via String], name });

struct CertTagRow {
    cert_id: CertificateId,
    tag: TagRecord,
}

crate::row::from_row!(CertTagRow { cert_id [via String], tag [flatten] });

#[async_trait]
impl Tags for SqlStore {
    async fn tags_of(&self, cert: &CertificateId) -> Result<Vec<TagRecord>> {
        Ok(db_run!(&self.pool, |p| {
            sqlx::query_as(
                "SELECT tag_key, tag_value FROM certificate_tags WHERE cert_id = $1 \
                 ORDER BY tag_key",
            )
            .bind(cert.as_str())
            .fetch_all(p)
            .await?
        }))
    }

    async fn put_tags(
        &self,
        account: &DomainId,
        cert: &CertificateId,
        tags: &[TagRecord],
        max: u32,
        now_ms: i64,
    ) -> Result<bool> {
        db_run!(&self.pool, |p| {
            let mut tx = p.begin().await?;
            for t in tags {
                sqlx::query(
                    "INSERT INTO certificate_tags (cert_id, domain_id, tag_key, tag_value, \
                     created_ms) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (cert_id, tag_key) DO UPDATE SET tag_value = excluded.tag_value",
                )
                .bind(cert.as_str())
                .bind(account.as_str())
                .bind(t.key.as_str())
                .bind(t.value.as_str())
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
            }
            // Counted inside the transaction, so concurrent additions cannot pass the limit
            // together (the second one's count sees the first one's rows, or waits for them).
            let (n,): (i64,) =
                sqlx::query_as("SELECT COUNT(*) FROM certificate_tags WHERE cert_id = $1")
                    .bind(cert.as_str())
                    .fetch_one(&mut *tx)
                    .await?;
            if n > i64::from(max) {
                tx.rollback().await?;
                return Ok(false);
            }
            sqlx::query(BUMP_CERTIFICATES).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    async fn delete_tags(&self, cert: &CertificateId, keys: &[String]) -> Result<()> {
        db_run!(&self.pool, |p| {
            let mut tx = p.begin().await?;
            let mut deleted = 0;
            for k in keys {
                deleted +=
                    sqlx::query("DELETE FROM certificate_tags WHERE cert_id = $1 AND tag_key = $2")
                        .bind(cert.as_str())
                        .bind(k.as_str())
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
            }
            // The certificate's cached tags change only if a tag went.
            if deleted > 0 {
                sqlx::query(BUMP_CERTIFICATES).execute(&mut *tx).await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    async fn account_tags(&self, account: &DomainId) -> Result<Vec<CertificateTag>> {
        let rows: Vec<CertTagRow> = db_run!(&self.pool, |p| {
            sqlx::query_as(
                "SELECT cert_id, tag_key, tag_value FROM certificate_tags WHERE domain_id = $1 \
                 ORDER BY tag_key, tag_value, cert_id",
            )
            .bind(account.as_str())
            .fetch_all(p)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|r| CertificateTag {
                cert_id: r.cert_id,
                tag: r.tag,
            })
            .collect())
    }

    async fn certificate_names(&self, account: &DomainId) -> Result<Vec<(CertificateId, String)>> {
        let rows: Vec<NameRow> = db_run!(&self.pool, |p| {
            sqlx::query_as(
                "SELECT id, name FROM certificates WHERE domain_id = $1 \
                 ORDER BY created_ms DESC, id DESC",
            )
            .bind(account.as_str())
            .fetch_all(p)
            .await?
        });
        Ok(rows.into_iter().map(|r| (r.id, r.name)).collect())
    }
}
