"""Zero-cost proxies (:mod:`nao.proxies.measures`), their label-free aggregate and the scoring of whole tables."""
