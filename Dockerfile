# The site's one image: every process of the Procfile runs from it
# (docker/entrypoint.sh NAME runs the Procfile's line NAME).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 FLASK_APP=wsgi.py PORT=8000
WORKDIR /app
RUN useradd --create-home --uid 10001 commons
COPY pyproject.toml requirements.lock ./
COPY marketplace ./marketplace
COPY jobs ./jobs
COPY templates ./templates
COPY static ./static
COPY migrations ./migrations
COPY seed ./seed
COPY wsgi.py gunicorn.conf.py Procfile babel.cfg ./
COPY docker ./docker
# The stand-ins are development tools: never in the image.
RUN rm -rf marketplace/standins \
    && pip install --no-cache-dir -c requirements.lock '.[prod]'
USER commons
EXPOSE 8000
ENTRYPOINT ["/app/docker/entrypoint.sh"]
CMD ["web"]
