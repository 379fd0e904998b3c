"""Result caching: the exact cache, the semantic cache and their guards."""
