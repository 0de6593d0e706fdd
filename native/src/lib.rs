//! Lanewire for native games (under construction).
