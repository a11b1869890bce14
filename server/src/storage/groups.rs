//! Entra groups and their direct members.

use super::{text, GroupRow, MemberRow, Result, Store};

impl Store {
    /// Creates or replaces a group.
    pub async fn upsert_group(&self, id: &str, body: &str, at: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO directory_groups (id, body, created_at, modified_at) VALUES ($1, $2, $3, $3)
             ON CONFLICT (id) DO UPDATE SET body = excluded.body, modified_at = excluded.modified_at",
        )
        .bind(id)
        .bind(body)
        .bind(at)
        .execute(&mut *self.db().await?)
        .await?;
        Ok(())
    }

    /// One group.
    pub async fn group(&self, id: &str) -> Result<Option<GroupRow>> {
        let row = sqlx::query("SELECT * FROM directory_groups WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *self.db().await?)
            .await?;
        row.map(|r| GroupRow::from_row(&r)).transpose()
    }

    /// Every group, oldest first.
    pub async fn groups(&self) -> Result<Vec<GroupRow>> {
        let rows = sqlx::query("SELECT * FROM directory_groups ORDER BY created_at, id")
            .fetch_all(&mut *self.db().await?)
            .await?;
        rows.iter().map(GroupRow::from_row).collect()
    }

    /// Forgets a group and its memberships.
    pub async fn delete_group(&self, id: &str) -> Result<bool> {
        let mut db = self.db().await?;
        sqlx::query("DELETE FROM group_members WHERE group_id = $1")
            .bind(id)
            .execute(&mut *db)
            .await?;
        let gone = sqlx::query("DELETE FROM directory_groups WHERE id = $1")
            .bind(id)
            .execute(&mut *db)
            .await?;
        Ok(gone.rows_affected() > 0)
    }

    /// Adds a direct member; false when it was one already.
    pub async fn add_member(&self, m: &MemberRow) -> Result<bool> {
        let added = sqlx::query(
            "INSERT INTO group_members (group_id, member_id, kind, name) VALUES ($1, $2, $3, $4)
             ON CONFLICT (group_id, member_id) DO NOTHING",
        )
        .bind(&m.group_id)
        .bind(&m.member_id)
        .bind(&m.kind)
        .bind(&m.name)
        .execute(&mut *self.db().await?)
        .await?;
        Ok(added.rows_affected() > 0)
    }

    /// Removes a direct member; false when it was none.
    pub async fn remove_member(&self, group_id: &str, member_id: &str) -> Result<bool> {
        let gone = sqlx::query("DELETE FROM group_members WHERE group_id = $1 AND member_id = $2")
            .bind(group_id)
            .bind(member_id)
            .execute(&mut *self.db().await?)
            .await?;
        Ok(gone.rows_affected() > 0)
    }

    /// Every group's direct members.
    pub async fn memberships(&self) -> Result<Vec<MemberRow>> {
        let rows = sqlx::query("SELECT * FROM group_members ORDER BY group_id, kind, member_id")
            .fetch_all(&mut *self.db().await?)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(MemberRow {
                    group_id: text(r, "group_id")?,
                    member_id: text(r, "member_id")?,
                    kind: text(r, "kind")?,
                    name: text(r, "name")?,
                })
            })
            .collect()
    }
}
