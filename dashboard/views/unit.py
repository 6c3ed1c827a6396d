"""One filter (being built)."""

import streamlit as st

st.title("One filter")
