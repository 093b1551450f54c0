"""How chunked work runs. ``local`` streams chunks from memory or disk with bounded memory."""
