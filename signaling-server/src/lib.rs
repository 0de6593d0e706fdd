//! Lanewire signaling (under construction).
