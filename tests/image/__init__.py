"""The container image: the Dockerfile's lint and structure, and a real buildah build."""
