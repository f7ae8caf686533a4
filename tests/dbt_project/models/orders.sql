-- order 12 has lost its amount: the not_null test on amount fails, and dbt build skips order_totals
select * from (values
    (10, 1, 25.00),
    (11, 2, 40.50),
    (12, 2, null),
    (13, 3, 12.25)
) as t(order_id, customer_id, amount)
