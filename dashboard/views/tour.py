"""Tour (being built)."""

import streamlit as st

st.title("Tour")
