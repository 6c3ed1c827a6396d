"""The Streamlit dashboard: ``app.py`` (navigation and the shared sidebar) and thin pages."""
