select * from (values (1, 'ada'), (2, 'grace'), (3, 'linus')) as t(customer_id, name)
