"""Head side: starting Ray, the shard scheduler, model shipping, and the single DuckDB writer loop."""
