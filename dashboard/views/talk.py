"""My talk (being built)."""

import streamlit as st

st.title("My talk")
