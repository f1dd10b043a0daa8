//! Reading a row into a struct by column name, on both backends.
//!
//! This is what `#[derive(sqlx::FromRow)]` would write. The derive lives in sqlx's proc-macro
//! crate, which is built with every sqlx driver we enable, a second time for the host: about two
//! minutes of a cold build on two cores for twelve small impls. So we write them with
//! `macro_rules!`.

/// Implements `sqlx::FromRow` for SQLite and PostgreSQL rows.
///
/// Every field of the struct is listed (the struct literal makes the compiler check that none is
/// missing); a field reads the column of its name unless told otherwise in brackets:
/// - `field [via String]`: reads a `String` and converts it with `TryFrom` (ids);
/// - `field [column "name"]`: reads the column `name`;
/// - `field [flatten]`: reads the nested struct from the same row.
macro_rules! from_row {
    ($ty:ty { $($field:ident $([$($how:tt)*])?),* $(,)? }) => {
        impl<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> for $ty {
            fn from_row(row: &'r sqlx::sqlite::SqliteRow) -> Result<Self, sqlx::Error> {
                Ok(Self { $($field: $crate::row::from_row!(@get row, $field, $($($how)*)?)),* })
            }
        }
        impl<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> for $ty {
            fn from_row(row: &'r sqlx::postgres::PgRow) -> Result<Self, sqlx::Error> {
                Ok(Self { $($field: $crate::row::from_row!(@get row, $field, $($($how)*)?)),* })
            }
        }
    };
    (@get $row:ident, $field:ident, ) => {
        sqlx::Row::try_get($row, stringify!($field))?
    };
    (@get $row:ident, $field:ident, column $column:literal) => {
        sqlx::Row::try_get($row, $column)?
    };
    (@get $row:ident, $field:ident, via $via:ty) => {{
        let raw: $via = sqlx::Row::try_get($row, stringify!($field))?;
        ::core::convert::TryFrom::try_from(raw).map_err(|e| sqlx::Error::ColumnDecode {
            index: stringify!($field).to_owned(),
            source: Box::new(e),
        })?
    }};
    (@get $row:ident, $field:ident, flatten) => {
        sqlx::FromRow::from_row($row)?
    };
}
pub(crate) use from_row;

#[cfg(test)]
mod tests {
    #[derive(Debug, PartialEq)]
    struct Inner {
        label: String,
    }
    from_row!(Inner { label [column "tag"] });

    #[derive(Debug, PartialEq)]
    struct Outer {
        id: scm_proto::DomainId,
        n: i64,
        gone: Option<i64>,
        inner: Inner,
    }
    from_row!(Outer { id [via String], n, gone, inner [flatten] });

    const SQL: &str = "SELECT '0123456789abcdef0123456789abcdef' AS id, CAST(7 AS BIGINT) AS n, \
                       CAST(NULL AS BIGINT) AS gone, 'x' AS tag";

    #[tokio::test]
    async fn reads_every_kind_of_field_and_refuses_a_bad_id() {
        let pool = sqlx::SqlitePool::connect("sqlite::memory:").await.unwrap();
        let row: Outer = sqlx::query_as(SQL).fetch_one(&pool).await.unwrap();
        assert_eq!(row.id.as_str(), "0123456789abcdef0123456789abcdef");
        assert_eq!((row.n, row.gone), (7, None));
        assert_eq!(row.inner, Inner { label: "x".into() });
        let bad = sqlx::query_as::<_, Outer>(
            "SELECT 'not an id' AS id, 7 AS n, NULL AS gone, 'x' AS tag",
        )
        .fetch_one(&pool)
        .await;
        assert!(
            matches!(bad, Err(sqlx::Error::ColumnDecode { ref index, .. }) if index == "id"),
            "{bad:?}"
        );
    }
}
