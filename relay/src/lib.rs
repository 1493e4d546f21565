//! Rankfile's relay: a store-and-forward server for end-to-end encrypted messages.
