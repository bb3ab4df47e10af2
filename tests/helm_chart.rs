//! The Helm chart (`helm/openmeet-appservice`) and the container image's run-time contract.
//!
//! The chart is linted and rendered with Helm's own code (Helm v4 as a library, PyPI
//! `helm-python-sdk`; there is no helm binary and no cluster here), every rendered object is
//! validated against a pinned Kubernetes version's schemas (PyPI `kubernetes-validate`; the
//! ServiceMonitor against the CRD fields the chart uses), and `tests/support/helm_chart.py`
//! returns all of it as JSON. The registration the chart renders is compared byte for byte with
//! what `openmeet-appservice registration` prints for the config the chart renders, and a real
//! Synapse loads it and pings a daemon running on that config. The image's run-time contract —
//! the binary alone, as a non-root user, with a read-only root and only `/tmp` writable — is
//! checked in a minimal root built from the binary and the libraries it links.
//!
//! One binary, so that every case is rendered once (`render`); a module per concern.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

#[path = "helm_chart/homeservers.rs"]
mod homeservers;
#[path = "helm_chart/image.rs"]
mod image;
#[path = "helm_chart/lint.rs"]
mod lint;
#[path = "helm_chart/registration.rs"]
mod registration;
#[path = "helm_chart/render.rs"]
mod render;
#[path = "helm_chart/replicas.rs"]
mod replicas;
#[path = "helm_chart/reports.rs"]
mod reports;
#[path = "helm_chart/rules.rs"]
mod rules;
#[path = "helm_chart/webhooks.rs"]
mod webhooks;
#[path = "helm_chart/workload.rs"]
mod workload;
