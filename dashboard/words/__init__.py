"""Words on the page: the glossary's terms, page headings, and escaping what a viewer typed."""
