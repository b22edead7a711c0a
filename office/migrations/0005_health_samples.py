# Written for the fleet monitor's health chart (office/web/fleet.py).

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('office', '0004_roles_audit'),
    ]

    operations = [
        migrations.CreateModel(
            name='HealthSample',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kit_id', models.TextField()),
                ('tst', models.FloatField()),
                ('battery', models.IntegerField(null=True)),
                ('battery_state', models.IntegerField(null=True)),
                ('rssi', models.IntegerField(null=True)),
                ('rsrp', models.IntegerField(null=True)),
                ('sinr', models.FloatField(null=True)),
                ('outbox', models.IntegerField(null=True)),
            ],
            options={
                'db_table': 'health_samples',
                'indexes': [models.Index(fields=['kit_id', 'tst'], name='health_samples_by_kit')],
            },
        ),
    ]
