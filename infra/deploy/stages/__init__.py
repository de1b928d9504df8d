"""One module per Google API the deploy tool converges; ``engine.STAGES`` orders them."""
