//! Helpers for the end-to-end tests (test images, registries, daemons).
