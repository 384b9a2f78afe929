//! `berth login` / `berth logout`: credentials in docker's config.json or a helper.

pub mod login;
pub mod logout;
