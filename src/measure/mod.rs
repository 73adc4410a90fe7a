//! Measurements read from the kernel and computed from traffic: fragmentation counters,
//! histograms, reports.

pub mod snmp;
