#!/bin/sh
# The official rabbitmq image's user setup, in short: the default user and password from
# the environment (written to this container's config, never to the image).
set -eu
umask 077
{
  echo "loopback_users.guest = true"
  echo "listeners.tcp.default = 5672"
  if [ -n "${RABBITMQ_DEFAULT_USER:-}" ]; then echo "default_user = $RABBITMQ_DEFAULT_USER"; fi
  if [ -n "${RABBITMQ_DEFAULT_PASS:-}" ]; then echo "default_pass = $RABBITMQ_DEFAULT_PASS"; fi
} > /etc/rabbitmq/rabbitmq.conf
exec "$@"
