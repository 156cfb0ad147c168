"""What wires and serves processes: building `Services` from settings (`bootstrap`), the
web app that mounts the API and the pages (`webapp`), the web server, the embedded
stack of `casework up` with its dev server, mail catcher and demo people, and the
retention schedule (docs/ARCHITECTURE.md)."""
