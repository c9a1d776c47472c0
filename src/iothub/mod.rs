//! IoT Hub service client. Knows nothing of Kubernetes.

pub mod sas;
