//! Generated gRPC types for defguard's worker protocol (feature `grpc`).
//!
//! defguard core serves the same `WorkerService` under two protobuf packages, so the
//! station has to speak both:
//!
//! | module                  | protobuf package     | service path prefix                   | spoken by |
//! |-------------------------|----------------------|---------------------------------------|-----------|
//! | [`defguard_worker_v1`]  | `defguard.worker.v1` | `/defguard.worker.v1.WorkerService/`  | current defguard core |
//! | [`worker`]              | `worker`             | `/worker.WorkerService/`              | older cores and provisioners |
//!
//! Both modules have the same shape: the messages `Worker`, `JobStatus` and
//! `GetJobResponse`, a client in `worker_service_client::WorkerServiceClient`, and a
//! server trait and service in `worker_service_server::{WorkerService,
//! WorkerServiceServer, SERVICE_NAME}`. `google.protobuf.Empty` maps to `()`. The
//! behaviour the schema cannot express (the token in the `authorization` metadata,
//! ALREADY_EXISTS from `RegisterWorker`, NOT_FOUND from `GetJob`, a job staying queued
//! until `SetJobDone`) is described at the top of the `.proto` files.
//!
//! # Where the code comes from
//!
//! The sources are `proto/defguard/worker/v1/worker.proto` and `proto/worker/worker.proto`.
//! The Rust code next to this file is generated from them by protox and
//! tonic-prost-build and committed, so a build needs neither `protoc` nor a build
//! script. Do not edit it by hand; after changing a `.proto` file run
//!
//! ```sh
//! KEYSTATION_REGENERATE_PROTO=1 cargo test --test proto_codegen
//! ```
//!
//! and commit `src/proto`. Without the variable, that test fails when the committed code
//! is stale. The generated files are pulled in with `include!`, so `cargo fmt` leaves
//! them exactly as the generator wrote them (prettyplease style) and the drift check
//! stays a plain byte comparison.
//!
//! The generated code passes the workspace lints as it is (tonic-prost-build puts its own
//! `#![allow(..)]` on the client and server modules, and every message and field carries
//! the doc comment written in the `.proto` file), so no lint is silenced here. If a newer
//! toolchain or generator trips a lint, add a targeted `#[allow(..)]` on the module below
//! rather than editing the generated file.

/// defguard's worker protocol under package `defguard.worker.v1` (current defguard core).
///
/// Generated from `proto/defguard/worker/v1/worker.proto`; see [`crate::proto`].
pub mod defguard_worker_v1 {
    include!("defguard.worker.v1.rs");
}

/// defguard's worker protocol under package `worker` (older cores and provisioners).
///
/// Generated from `proto/worker/worker.proto`; see [`crate::proto`].
pub mod worker {
    include!("worker.rs");
}
