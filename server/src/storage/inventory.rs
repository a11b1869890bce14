//! Each device's current application inventory, and Discovered apps across devices.

use serde::Serialize;

use super::{Result, Store};

/// One program a device reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InventoryRow {
    /// The device.
    pub device_id: String,
    /// The IME's ProgramId.
    pub program_id: String,
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Vendor.
    pub publisher: String,
}

impl Store {
    /// A device's current inventory.
    pub async fn inventory(&self, device_id: &str) -> Result<Vec<InventoryRow>> {
        self.inventory_rows(
            "SELECT * FROM device_inventory WHERE device_id = $1 ORDER BY program_id",
            Some(device_id),
        )
        .await
    }

    /// Every device's inventory.
    pub async fn all_inventory(&self) -> Result<Vec<InventoryRow>> {
        self.inventory_rows(
            "SELECT * FROM device_inventory ORDER BY name, version, device_id",
            None,
        )
        .await
    }

    async fn inventory_rows(
        &self,
        sql: &'static str,
        device: Option<&str>,
    ) -> Result<Vec<InventoryRow>> {
        use sqlx::Row;
        let mut q = sqlx::query(sql);
        if let Some(d) = device {
            q = q.bind(d);
        }
        let rows = q.fetch_all(&mut *self.db().await?).await?;
        rows.iter()
            .map(|r| {
                Ok(InventoryRow {
                    device_id: r.try_get("device_id")?,
                    program_id: r.try_get("program_id")?,
                    name: r.try_get("name")?,
                    version: r.try_get("version")?,
                    publisher: r.try_get("publisher")?,
                })
            })
            .collect()
    }

    /// Adds or updates programs of a device; with `replace`, they become its whole
    /// inventory (a full inventory).
    pub async fn put_inventory(
        &self,
        device_id: &str,
        rows: &[InventoryRow],
        replace: bool,
        at: &str,
    ) -> Result<()> {
        if replace {
            sqlx::query("DELETE FROM device_inventory WHERE device_id = $1")
                .bind(device_id)
                .execute(&mut *self.db().await?)
                .await?;
        }
        for r in rows {
            sqlx::query(
                "INSERT INTO device_inventory (device_id, program_id, name, version, publisher, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (device_id, program_id) DO UPDATE SET name = excluded.name,
                    version = excluded.version, publisher = excluded.publisher, updated_at = excluded.updated_at",
            )
            .bind(device_id)
            .bind(&r.program_id)
            .bind(&r.name)
            .bind(&r.version)
            .bind(&r.publisher)
            .bind(at)
            .execute(&mut *self.db().await?)
            .await?;
        }
        Ok(())
    }
}
