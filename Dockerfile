# lbproxy in a container (see docs/operations.md, "Running in a container").
#
#   docker build -t lbproxy .
#   docker run -p 8080:8080 -p 127.0.0.1:9901:9901 \
#       -v /etc/lbproxy/config.toml:/etc/lbproxy/config.toml:ro lbproxy
#
# The process runs in the foreground as an unprivileged user (lbproxy run =
# twistd -n --pidfile= lbproxy), logs to standard output, reloads on
# SIGHUP (docker kill -s HUP) and drains on SIGTERM (docker stop).
FROM python:3.11-slim

RUN useradd --system --home-dir /nonexistent --shell /usr/sbin/nologin lbproxy \
    && mkdir -p /etc/lbproxy

WORKDIR /src
COPY setup.cfg pyproject.toml README.md ./
COPY lbproxy ./lbproxy
COPY twisted ./twisted
RUN pip install --no-cache-dir . && rm -rf /src

# The example configuration (its demo backends and a self-signed certificate,
# written next to it on first start); mount your own over it.
COPY config.toml /etc/lbproxy/config.toml
RUN chown -R lbproxy /etc/lbproxy
WORKDIR /etc/lbproxy
USER lbproxy
EXPOSE 8080 9901
# Start-up fails with one line and a non-zero exit (docker logs shows it).
HEALTHCHECK --interval=10s --timeout=3s CMD ["python", "-c", "import socket; socket.create_connection(('127.0.0.1', 8080), 2)"]
ENTRYPOINT ["lbproxy"]
CMD ["run", "--config", "/etc/lbproxy/config.toml"]
