//! Win32 app content as Graph uploads it: content versions, their files, the blocks put
//! to a file's upload URI (stored as chunks of at most [`CHUNK`] bytes, so no statement
//! carries more), and the package a device downloads.

use sqlx::any::AnyRow;

use super::{int, opt_text, text, Result, Store};

/// The most bytes one stored chunk holds.
pub const CHUNK: usize = 1 << 20;

/// Graph's `mobileAppContentFile`, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentFileRow {
    /// The file's id (a GUID).
    pub id: String,
    /// The app it belongs to.
    pub app_id: String,
    /// Its content version.
    pub version: i64,
    /// `name` (`IntunePackage.intunewin`).
    pub name: String,
    /// `size`: the plaintext's bytes, as the client declared them.
    pub size: i64,
    /// `sizeEncrypted`, as the client declared it.
    pub size_encrypted: i64,
    /// `isDependency`.
    pub is_dependency: bool,
    /// `uploadState` (Graph's `mobileAppContentFileUploadState` value).
    pub upload_state: String,
    /// `azureStorageUriExpirationDateTime`.
    pub upload_expires: String,
    /// The blob's committed block ids in order (a JSON array), once its list was put.
    pub block_list: Option<String>,
    /// The `fileEncryptionInfo` given at commit (JSON).
    pub encryption: Option<String>,
    /// `createdDateTime`.
    pub created_at: String,
}

impl ContentFileRow {
    fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(ContentFileRow {
            id: text(r, "id")?,
            app_id: text(r, "app_id")?,
            version: int(r, "version")?,
            name: text(r, "name")?,
            size: int(r, "size")?,
            size_encrypted: int(r, "size_encrypted")?,
            is_dependency: int(r, "is_dependency")? != 0,
            upload_state: text(r, "upload_state")?,
            upload_expires: text(r, "upload_expires")?,
            block_list: opt_text(r, "block_list")?,
            encryption: opt_text(r, "encryption")?,
            created_at: text(r, "created_at")?,
        })
    }

    /// The committed block ids, in order.
    pub fn blocks(&self) -> Vec<String> {
        self.block_list
            .as_deref()
            .and_then(|l| serde_json::from_str(l).ok())
            .unwrap_or_default()
    }
}

/// A block put to a blob and not (yet) in its list: its id, chunks and bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockRow {
    /// The block id as the client gave it (base64).
    pub id: String,
    /// How many chunks hold it.
    pub chunks: i64,
    /// Its bytes.
    pub len: i64,
}

impl Store {
    /// Starts an app's next content version: its number.
    pub async fn add_content_version(&self, app_id: &str, at: &str) -> Result<i64> {
        use sqlx::Row;
        let mut db = self.db().await?;
        let next: i64 = sqlx::query(
            "SELECT COALESCE(MAX(id), 0) + 1 AS next FROM content_versions WHERE app_id = $1",
        )
        .bind(app_id)
        .fetch_one(&mut *db)
        .await?
        .try_get("next")?;
        sqlx::query("INSERT INTO content_versions (app_id, id, created_at) VALUES ($1, $2, $3)")
            .bind(app_id)
            .bind(next)
            .bind(at)
            .execute(&mut *db)
            .await?;
        Ok(next)
    }

    /// An app's content versions: (number, created).
    pub async fn content_versions(&self, app_id: &str) -> Result<Vec<(i64, String)>> {
        let rows = sqlx::query(
            "SELECT id, created_at FROM content_versions WHERE app_id = $1 ORDER BY id",
        )
        .bind(app_id)
        .fetch_all(&mut *self.db().await?)
        .await?;
        rows.iter()
            .map(|r| Ok((int(r, "id")?, text(r, "created_at")?)))
            .collect()
    }

    /// Adds a content file.
    pub async fn add_content_file(&self, f: &ContentFileRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO content_files (id, app_id, version, name, size, size_encrypted, is_dependency,
                upload_state, upload_expires, block_list, encryption, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&f.id)
        .bind(&f.app_id)
        .bind(f.version)
        .bind(&f.name)
        .bind(f.size)
        .bind(f.size_encrypted)
        .bind(i64::from(f.is_dependency))
        .bind(&f.upload_state)
        .bind(&f.upload_expires)
        .bind(&f.block_list)
        .bind(&f.encryption)
        .bind(&f.created_at)
        .execute(&mut *self.db().await?)
        .await?;
        Ok(())
    }

    /// A content version's files.
    pub async fn content_files(&self, app_id: &str, version: i64) -> Result<Vec<ContentFileRow>> {
        let rows = sqlx::query(
            "SELECT * FROM content_files WHERE app_id = $1 AND version = $2 ORDER BY created_at, id",
        )
        .bind(app_id)
        .bind(version)
        .fetch_all(&mut *self.db().await?)
        .await?;
        rows.iter().map(ContentFileRow::from_row).collect()
    }

    /// One content file.
    pub async fn content_file(&self, id: &str) -> Result<Option<ContentFileRow>> {
        let row = sqlx::query("SELECT * FROM content_files WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *self.db().await?)
            .await?;
        row.map(|r| ContentFileRow::from_row(&r)).transpose()
    }

    /// Writes a content file's upload state, list and encryption info.
    pub async fn update_content_file(&self, f: &ContentFileRow) -> Result<()> {
        sqlx::query(
            "UPDATE content_files SET upload_state = $2, upload_expires = $3, block_list = $4,
                encryption = $5 WHERE id = $1",
        )
        .bind(&f.id)
        .bind(&f.upload_state)
        .bind(&f.upload_expires)
        .bind(&f.block_list)
        .bind(&f.encryption)
        .execute(&mut *self.db().await?)
        .await?;
        Ok(())
    }

    /// Forgets a block put to a file's blob (before it is put again).
    pub async fn drop_block(&self, file_id: &str, block_id: &str) -> Result<()> {
        sqlx::query("DELETE FROM content_chunks WHERE file_id = $1 AND block_id = $2")
            .bind(file_id)
            .bind(block_id)
            .execute(&mut *self.db().await?)
            .await?;
        Ok(())
    }

    /// Stores one chunk of a block.
    pub async fn put_chunk(
        &self,
        file_id: &str,
        block_id: &str,
        seq: i64,
        bytes: &[u8],
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO content_chunks (file_id, block_id, seq, len, bytes) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(file_id)
        .bind(block_id)
        .bind(seq)
        .bind(bytes.len() as i64)
        .bind(bytes.to_vec())
        .execute(&mut *self.db().await?)
        .await?;
        Ok(())
    }

    /// One chunk of a block.
    pub async fn chunk(&self, file_id: &str, block_id: &str, seq: i64) -> Result<Option<Vec<u8>>> {
        Ok(sqlx::query_scalar::<_, Vec<u8>>(
            "SELECT bytes FROM content_chunks WHERE file_id = $1 AND block_id = $2 AND seq = $3",
        )
        .bind(file_id)
        .bind(block_id)
        .bind(seq)
        .fetch_optional(&mut *self.db().await?)
        .await?)
    }

    /// The blocks put to a file's blob: ids, chunk counts and sizes.
    pub async fn blocks(&self, file_id: &str) -> Result<Vec<BlockRow>> {
        let rows = sqlx::query(
            "SELECT block_id, COUNT(*) AS chunks, CAST(SUM(len) AS BIGINT) AS len FROM content_chunks
             WHERE file_id = $1 GROUP BY block_id ORDER BY block_id",
        )
        .bind(file_id)
        .fetch_all(&mut *self.db().await?)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(BlockRow {
                    id: text(r, "block_id")?,
                    chunks: int(r, "chunks")?,
                    len: int(r, "len")?,
                })
            })
            .collect()
    }

    /// Forgets every content version, file and block of an app.
    pub(super) async fn delete_app_content(&self, app_id: &str) -> Result<()> {
        let mut db = self.db().await?;
        for statement in [
            "DELETE FROM content_chunks WHERE file_id IN (SELECT id FROM content_files WHERE app_id = $1)",
            "DELETE FROM content_files WHERE app_id = $1",
            "DELETE FROM content_versions WHERE app_id = $1",
            "DELETE FROM app_packages WHERE app_id = $1",
        ] {
            sqlx::query(statement).bind(app_id).execute(&mut *db).await?;
        }
        Ok(())
    }

    /// Makes a committed file the content devices download for its app, with its
    /// Detection.xml. The caller writes the app too ([`Store::upsert_app`]), which makes
    /// its next revision: one change, one revision.
    pub async fn set_app_package(
        &self,
        app_id: &str,
        file_id: &str,
        detection: &str,
        at: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO app_packages (app_id, file_id, detection, committed_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (app_id) DO UPDATE SET file_id = excluded.file_id,
                detection = excluded.detection, committed_at = excluded.committed_at",
        )
        .bind(app_id)
        .bind(file_id)
        .bind(detection)
        .bind(at)
        .execute(&mut *self.db().await?)
        .await?;
        Ok(())
    }

    /// The content an app's devices download: its file id and Detection.xml.
    pub async fn app_package(&self, app_id: &str) -> Result<Option<(String, String)>> {
        let row = sqlx::query("SELECT file_id, detection FROM app_packages WHERE app_id = $1")
            .bind(app_id)
            .fetch_optional(&mut *self.db().await?)
            .await?;
        row.map(|r| Ok((text(&r, "file_id")?, text(&r, "detection")?)))
            .transpose()
    }

    /// An app's Detection.xml alone (what policy needs, without the content).
    pub async fn app_detection(&self, app_id: &str) -> Result<Option<String>> {
        Ok(self.app_package(app_id).await?.map(|(_, d)| d))
    }
}
