# org-operator: one image for the operator (`run`) and the verifier (`verifier`).
#   docker build -t org-operator:dev .
# The builder resolves the pinned dependencies into wheels and installs them into a virtualenv; the
# final image gets that virtualenv only: no pip cache, no build tools, no source tree.

FROM python:3.11-slim AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/venv
COPY pyproject.toml setup.py README.md ./
COPY operator ./operator
COPY crds ./crds
COPY examples ./examples
RUN /opt/venv/bin/pip wheel --wheel-dir /wheels . \
    && /opt/venv/bin/pip install --no-index --find-links /wheels /wheels/*.whl

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
COPY --from=builder /opt/venv /opt/venv
# A numeric user, so that the kubelet can verify runAsNonRoot without an /etc/passwd entry.
USER 10001
EXPOSE 8080
ENTRYPOINT ["org-operator"]
CMD ["run", "-A"]
