//! The route table: method and path to handler. Handlers turn requests into typed calls
//! on the engine and answers into dockerd's JSON.

mod archive;
mod containers;
mod images;
mod resources;
mod stream;
mod system;
mod volumes;

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
        .route("/containers/create", post(containers::create))
        .route("/containers/json", get(containers::list))
        .route("/containers/prune", post(containers::prune))
        .route("/containers/{id}/rename", post(containers::rename))
        .route("/containers/{id}/json", get(containers::inspect))
        .route("/containers/{id}/start", post(containers::start))
        .route("/containers/{id}/stop", post(containers::stop))
        .route("/containers/{id}/restart", post(containers::restart))
        .route("/containers/{id}/kill", post(containers::kill))
        .route("/containers/{id}/pause", post(containers::pause))
        .route("/containers/{id}/unpause", post(containers::unpause))
        .route("/containers/{id}/wait", post(containers::wait))
        .route("/containers/{id}/resize", post(containers::resize))
        .route("/containers/{id}/logs", get(containers::logs))
        .route("/containers/{id}/attach", post(containers::attach))
        .route("/containers/{id}/exec", post(containers::exec_create))
        .route(
            "/containers/{id}/archive",
            get(archive::get).head(archive::head).put(archive::put),
        )
        .route("/containers/{id}/changes", get(archive::changes))
        .route("/containers/{id}/export", get(archive::export))
        .route("/commit", post(archive::commit))
        .route("/containers/{id}/stats", get(resources::stats))
        .route("/containers/{id}/top", get(resources::top))
        .route("/containers/{id}/update", post(resources::update))
        .route(
            "/containers/{id}",
            axum::routing::delete(containers::remove),
        )
        .route("/exec/{id}/start", post(containers::exec_start))
        .route("/exec/{id}/resize", post(containers::exec_resize))
        .route("/exec/{id}/json", get(containers::exec_inspect))
        .route("/volumes", get(volumes::list))
        .route(
            "/volumes/create",
            post(volumes::create)
                .get(volumes::inspect)
                .delete(volumes::remove),
        )
        .route(
            "/volumes/prune",
            post(volumes::prune)
                .get(volumes::inspect)
                .delete(volumes::remove),
        )
        .route(
            "/volumes/{name}",
            get(volumes::inspect).delete(volumes::remove),
        )
        .with_state(engine)
}
