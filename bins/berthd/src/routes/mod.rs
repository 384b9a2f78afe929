//! The route table: method and path to handler. Handlers turn requests into typed calls
//! on the engine and answers into dockerd's JSON.

mod images;
mod stream;
mod system;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use berth_engine::Engine;

pub type State = axum::extract::State<Arc<Engine>>;

pub fn router(engine: Arc<Engine>) -> Router {
    Router::new()
        .route("/_ping", get(system::ping).head(system::ping))
        .route("/version", get(system::version))
        .route("/info", get(system::info))
        .route("/events", get(system::events))
        .route("/system/df", get(system::disk_usage))
        .route("/auth", post(system::auth))
        .route("/images/json", get(images::list))
        .route("/images/create", post(images::create))
        .route("/images/prune", post(images::prune))
        .route("/images/load", post(images::load))
        .route("/images/get", get(images::save_many))
        .route(
            "/images/{*rest}",
            get(images::get_named)
                .post(images::post_named)
                .delete(images::delete_named),
        )
        .with_state(engine)
}
