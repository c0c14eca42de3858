//! Runs each store behaviour on both backends: SQLite in memory, and a
//! PostgreSQL server of the test's own (gridwatch-testkit), so that the two
//! stores are held to the same tests.
//!
//! A behaviour is a function `fn name(s: Store)`; `on_both_backends! { name,
//! … }` makes the tests `name::sqlite` and `name::postgres`. The PostgreSQL
//! test fails when PostgreSQL is not installed, unless
//! GRIDWATCH_ALLOW_MISSING_SERVERS is set (the test kit's rule).

#![allow(dead_code)]

use gridwatch_analytics::store::Store;
use gridwatch_testkit::Postgres;

/// A store on a fresh PostgreSQL database, and the server, which must
/// outlive it.
pub struct PgStore {
    pub store: Store,
    pub server: Postgres,
}

/// A fresh server and a store on it; `None` when PostgreSQL is missing and
/// that is allowed.
pub fn postgres_store() -> Option<PgStore> {
    let server = Postgres::start()?;
    let store = Store::open_postgres(&server.url())
        .unwrap_or_else(|e| panic!("open the store on {}: {e}\n{}", server.url(), server.log()));
    Some(PgStore { store, server })
}

/// `name::sqlite` and `name::postgres` for each behaviour `name(Store)`.
#[allow(unused_macros)]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn sqlite() {
                super::$name(gridwatch_analytics::store::Store::open_in_memory().unwrap());
            }

            #[test]
            fn postgres() {
                let Some(pg) = $crate::backends::postgres_store() else {
                    return;
                };
                super::$name(pg.store.clone());
            }
        }
    )*};
}
