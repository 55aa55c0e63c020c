"""The latent explorer in the browser: ``create_app(run_dir)`` (FastAPI) and its static page."""
