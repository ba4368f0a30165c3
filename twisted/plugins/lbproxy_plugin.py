from twisted.application.service import ServiceMaker

lbproxy = ServiceMaker(
    "lbproxy",
    "lbproxy.app.tap",
    "A load balancer and reverse proxy configured by config.toml",
    "lbproxy",
)
