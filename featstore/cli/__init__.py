"""Command-line apps: ``featstore`` (store, import, extract) and ``evaluate`` (analysis).

Commands parse options, call one library function and print. Library errors
(:class:`featstore.errors.FeatstoreError`) become one line on stderr and exit code 2.
"""
