"""Provider adapters behind one interface, chosen from a registry by ``kind``."""
